// The Llama-shaped HF decoder config (LlamaConfig, Qwen2Config, ...) -> the shared DecoderConfig. A family adapter
// is data over this core: its model_type, the defaults of its config class, which extra fields it reads (Llama:
// head_dim, attention_bias, mlp_bias) and how they become biases and the head width.

import { z } from 'zod';
import { KvlensInputError } from '../util/errors.js';
import { weightNamesUnder, type DecoderConfig, type DecoderWeightNames } from './lm/config.js';
import { parseHfConfig, posInt } from './hf-config.js';

/** Defaults that differ between config classes (the rest are shared by LlamaConfig and Qwen2Config). */
export interface DecoderDefaults {
  readonly vocabSize: number;
  readonly intermediateSize: number;
}

/**
 * The fields every Llama-shaped config class has, with the transformers 4.46 defaults. A family's own fields go
 * in where its config class declares them (`afterKvHeads`, `afterRope`), so a config broken in several fields
 * reports the same first field as before.
 */
export function hfDecoderSchema<M extends string, H extends z.ZodRawShape, T extends z.ZodRawShape>(modelType: M, d: DecoderDefaults, afterKvHeads: H, afterRope: T) {
  return z.object({
    model_type: z.literal(modelType).optional(),
    vocab_size: posInt.default(d.vocabSize),
    hidden_size: posInt.default(4096),
    intermediate_size: posInt.default(d.intermediateSize),
    num_hidden_layers: posInt.default(32),
    num_attention_heads: posInt.default(32),
    num_key_value_heads: posInt.nullish(),
    ...afterKvHeads,
    hidden_act: z.enum(['silu', 'gelu', 'gelu_pytorch_tanh']).default('silu'),
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().default(10000),
    rope_scaling: z.union([z.null(), z.object({ type: z.string().optional(), rope_type: z.string().optional() }).passthrough()]).default(null),
    ...afterRope,
    tie_word_embeddings: z.boolean().default(false),
    eos_token_id: z.union([z.number().int(), z.array(z.number().int()), z.null()]).optional(),
  }).passthrough();
}

type HfDecoderFields = z.output<ReturnType<typeof hfDecoderSchema<string, {}, {}>>>;

/** How one family's parsed config maps onto the shared decoder. */
export interface DecoderFamily<C extends HfDecoderFields> {
  readonly arch: string;
  readonly schema: z.ZodType<C>;
  /** Appended to the unsupported-rope error, e.g. " (only unscaled RoPE)". */
  readonly ropeNote: string;
  readonly biases: (c: C) => Pick<DecoderConfig, 'qkvBias' | 'oBias' | 'mlpBias'>;
  /** Present when the config class has head_dim (Llama); otherwise the width is hidden_size / heads. */
  readonly headDim?: (c: C) => number | null | undefined;
}

export interface DecoderParseOptions {
  readonly where?: string;
  readonly weights?: DecoderWeightNames;
}

export function parseHfDecoder<C extends HfDecoderFields>(family: DecoderFamily<C>, raw: unknown, opts: DecoderParseOptions = {}): DecoderConfig {
  const where = opts.where ?? 'config.json';
  const c = parseHfConfig(family.schema, raw, where);
  const scaling = c.rope_scaling;
  const ropeType = scaling ? scaling.rope_type ?? scaling.type ?? 'default' : 'default';
  if (ropeType !== 'default') {
    throw new KvlensInputError(`field "rope_scaling": rope type "${ropeType}" is not supported${family.ropeNote}`, where);
  }
  const explicitHeadDim = family.headDim?.(c);
  const checkWidthSplit = () => {
    if (explicitHeadDim || c.hidden_size % c.num_attention_heads === 0) return;
    const hint = family.headDim ? ' and no head_dim is given' : '';
    throw new KvlensInputError(`hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}${hint}`, where);
  };
  // Which error a config broken both ways reports is kept per family: Qwen2 names the width split first.
  if (!family.headDim) checkWidthSplit();
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new KvlensInputError(`num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${numKvHeads}`, where);
  }
  if (family.headDim) checkWidthSplit();
  const headDim = explicitHeadDim || c.hidden_size / c.num_attention_heads;
  if (headDim % 2 !== 0) throw new KvlensInputError(`head dimension ${headDim} must be even for RoPE`, where);
  const eos = c.eos_token_id;
  return {
    arch: family.arch,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads,
    headDim,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta: c.rope_theta,
    hiddenAct: c.hidden_act,
    ...family.biases(c),
    tieWordEmbeddings: c.tie_word_embeddings,
    eosTokenIds: eos === null || eos === undefined ? [] : Array.isArray(eos) ? eos : [eos],
    weights: opts.weights ?? weightNamesUnder(''),
  };
}
