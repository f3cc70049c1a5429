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
  readonly ropeTheta?: number;
}

// Checked key by key in ropeOf, so an error names the key inside the dict.
const ropeDict = z.record(z.string(), z.unknown()).nullish();

/**
 * The fields every Llama-shaped config class has, with the transformers 4.46 defaults. A family's own fields go
 * in where its config class declares them (`afterKvHeads`, `afterRope`), so a config broken in several fields
 * reports the same first field as before. RoPE comes as rope_scaling (4.x) or rope_parameters (v5, with
 * rope_theta inside); see ropeOf.
 */
export function hfDecoderSchema<M extends string, H extends z.ZodRawShape, T extends z.ZodRawShape>(modelTypes: readonly [M, ...M[]], d: DecoderDefaults, afterKvHeads: H, afterRope: T) {
  return z.object({
    model_type: z.enum(modelTypes as [M, ...M[]]).optional(),
    vocab_size: posInt.default(d.vocabSize),
    hidden_size: posInt.default(4096),
    intermediate_size: posInt.default(d.intermediateSize),
    num_hidden_layers: posInt.default(32),
    num_attention_heads: posInt.default(32),
    num_key_value_heads: posInt.nullish(),
    ...afterKvHeads,
    hidden_act: z.enum(['silu', 'gelu', 'gelu_pytorch_tanh']).default('silu'),
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().optional(),
    rope_scaling: ropeDict,
    rope_parameters: ropeDict,
    ...afterRope,
    tie_word_embeddings: z.boolean().default(false),
    eos_token_id: z.union([z.number().int(), z.array(z.number().int()), z.null()]).optional(),
    // Qwen2-style sliding-window attention (checked by slidingWindowInUse; absent from LlamaConfig).
    use_sliding_window: z.boolean().nullish(),
    sliding_window: z.number().int().positive().nullish(),
    max_window_layers: z.number().int().nonnegative().nullish(),
    layer_types: z.array(z.string()).nullish(),
  }).passthrough();
}

type HfDecoderFields = z.output<ReturnType<typeof hfDecoderSchema<string, {}, {}>>>;

/** How one family's parsed config maps onto the shared decoder. */
export interface DecoderFamily<C extends HfDecoderFields> {
  readonly arch: string;
  readonly schema: z.ZodType<C>;
  /** rope_theta of the config class when the file gives none. */
  readonly ropeTheta: number;
  /** RoPE types the family implements ("default" = unscaled); "mrope" needs mrope_section. */
  readonly ropeTypes: readonly string[];
  /** Appended to the unsupported-rope error, e.g. " (only unscaled RoPE)". */
  readonly ropeNote: string;
  readonly biases: (c: C) => Pick<DecoderConfig, 'qkvBias' | 'oBias' | 'mlpBias'>;
  /** Present when the config class has head_dim (Llama); otherwise the width is hidden_size / heads. */
  readonly headDim?: (c: C) => number | null | undefined;
  /** M-RoPE (Qwen2-VL): the rope dict must carry mrope_section, split over [temporal, height, width]. */
  readonly mrope?: boolean;
}

export interface DecoderParseOptions {
  readonly where?: string;
  readonly weights?: DecoderWeightNames;
}

/** RoPE as transformers resolves it: which field held it, its type, theta, and the whole dict. */
export interface RopeSpec {
  readonly field: 'rope_scaling' | 'rope_parameters' | 'rope_theta';
  readonly type: string;
  readonly theta: number;
  readonly params: Readonly<Record<string, unknown>>;
}

/**
 * transformers v5 standardisation: rope_scaling (the 4.x name) wins over rope_parameters; the type is rope_type,
 * else the older `type`, else "default"; theta is rope_parameters.rope_theta, else the top-level rope_theta, else
 * the config class default. A per-layer-type dict (v5, {full_attention: {...}, ...}) is read when every layer
 * type present maps to the same parameters.
 */
export function ropeOf(c: HfDecoderFields, defaultTheta: number, where: string): RopeSpec {
  const field = c.rope_scaling ? 'rope_scaling' : c.rope_parameters ? 'rope_parameters' : 'rope_theta';
  let params: Record<string, unknown> = (field === 'rope_theta' ? {} : (c.rope_scaling ?? c.rope_parameters)) as Record<string, unknown>;
  const perLayer = Object.values(params).filter((v) => typeof v === 'object' && v !== null && !Array.isArray(v));
  if (perLayer.length && perLayer.length === Object.keys(params).length) {
    const distinct = new Set(perLayer.map((v) => JSON.stringify(v)));
    if (distinct.size > 1) throw new KvlensInputError(`field "${field}": per-layer-type RoPE parameters that differ between layer types are not supported`, where);
    params = perLayer[0] as Record<string, unknown>;
  }
  for (const k of ['rope_type', 'type']) {
    if (params[k] !== undefined && typeof params[k] !== 'string') throw new KvlensInputError(`field "${field}.${k}": expected a string, got ${JSON.stringify(params[k])}`, where);
  }
  const type = (params.rope_type ?? params.type ?? 'default') as string;
  const inner = params.rope_theta;
  if (inner !== undefined && !(typeof inner === 'number' && inner > 0)) throw new KvlensInputError(`field "${field}.rope_theta": expected a positive number, got ${JSON.stringify(inner)}`, where);
  return { field, type, theta: (inner as number | undefined) ?? c.rope_theta ?? defaultTheta, params };
}

/**
 * Layers that attend over a sliding window, as Qwen2Config decides it (transformers 4.46 and v5 alike):
 * layer_types when given, else every layer from max_window_layers on when use_sliding_window and sliding_window
 * are both set. kvlens implements full causal attention only.
 */
export function slidingWindowLayers(c: HfDecoderFields): number[] {
  if (c.layer_types) return c.layer_types.flatMap((t, i) => (t === 'full_attention' ? [] : [i]));
  if (!c.use_sliding_window || c.sliding_window == null) return [];
  const first = c.max_window_layers ?? 0;
  return Array.from({ length: Math.max(0, c.num_hidden_layers - first) }, (_, i) => first + i);
}

function mropeSectionOf(rope: RopeSpec, headDim: number, where: string): number[] {
  const s = rope.params.mrope_section;
  const f = rope.field === 'rope_theta' ? 'rope_scaling' : rope.field;
  if (!Array.isArray(s) || s.length === 0 || !s.every((x) => Number.isInteger(x) && x > 0)) {
    throw new KvlensInputError(`field "${f}.mrope_section" is required: Qwen2-VL models use M-RoPE (a list of positive integers)`, where);
  }
  if (s.reduce((a: number, b: number) => a + b, 0) !== headDim / 2) {
    throw new KvlensInputError(`field "${f}.mrope_section": [${s.join(', ')}] must sum to head_dim / 2 = ${headDim / 2}`, where);
  }
  return s as number[];
}

export function parseHfDecoder<C extends HfDecoderFields>(family: DecoderFamily<C>, raw: unknown, opts: DecoderParseOptions = {}): DecoderConfig {
  const where = opts.where ?? 'config.json';
  const c = parseHfConfig(family.schema, raw, where);
  const rope = ropeOf(c, family.ropeTheta, where);
  if (!family.ropeTypes.includes(rope.type)) {
    throw new KvlensInputError(`field "${rope.field}": rope type "${rope.type}" is not supported${family.ropeNote}`, where);
  }
  const sliding = slidingWindowLayers(c);
  if (sliding.length) {
    const field = c.layer_types ? 'layer_types' : 'use_sliding_window';
    throw new KvlensInputError(`field "${field}": sliding-window attention (window ${c.sliding_window ?? '?'}) on layers ${sliding.join(', ')} is not supported; kvlens implements full causal attention`, where);
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
    ropeTheta: rope.theta,
    ...(family.mrope ? { mropeSection: mropeSectionOf(rope, headDim, where) } : {}),
    hiddenAct: c.hidden_act,
    ...family.biases(c),
    tieWordEmbeddings: c.tie_word_embeddings,
    eosTokenIds: eos === null || eos === undefined ? [] : Array.isArray(eos) ? eos : [eos],
    weights: opts.weights ?? weightNamesUnder(''),
  };
}
