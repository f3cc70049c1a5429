// Qwen2 configuration (HF Qwen2Config, model_type "qwen2") -> the shared DecoderConfig.
// Omitted fields take transformers 4.46 defaults; nested text_configs written by save_pretrained omit them.

import { z } from 'zod';
import { KvlensInputError } from '../../util/errors.js';
import { weightNamesUnder, type DecoderConfig, type DecoderWeightNames } from '../lm/config.js';

const posInt = z.number().int().positive();

const qwen2Schema = z.object({
  model_type: z.literal('qwen2').optional(),
  vocab_size: posInt.default(151936),
  hidden_size: posInt.default(4096),
  intermediate_size: posInt.default(22016),
  num_hidden_layers: posInt.default(32),
  num_attention_heads: posInt.default(32),
  num_key_value_heads: posInt.nullish(),
  hidden_act: z.enum(['silu', 'gelu', 'gelu_pytorch_tanh']).default('silu'),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().default(10000),
  rope_scaling: z.union([z.null(), z.object({ type: z.string().optional(), rope_type: z.string().optional() }).passthrough()]).default(null),
  tie_word_embeddings: z.boolean().default(false),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int()), z.null()]).optional(),
}).passthrough();

export function parseQwen2Config(raw: unknown, opts: { where?: string; weights?: DecoderWeightNames } = {}): DecoderConfig {
  const where = opts.where ?? 'config.json';
  const r = qwen2Schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new KvlensInputError(`field "${issue.path.join('.')}": ${issue.message}`, where);
  }
  const c = r.data;
  const scaling = c.rope_scaling;
  const ropeType = scaling ? scaling.rope_type ?? scaling.type ?? 'default' : 'default';
  if (ropeType !== 'default') {
    throw new KvlensInputError(`field "rope_scaling": rope type "${ropeType}" is not supported (only unscaled RoPE)`, where);
  }
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new KvlensInputError(`hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`, where);
  }
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new KvlensInputError(`num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${numKvHeads}`, where);
  }
  const headDim = c.hidden_size / c.num_attention_heads;
  if (headDim % 2 !== 0) throw new KvlensInputError(`head dimension ${headDim} must be even for RoPE`, where);
  const eos = c.eos_token_id;
  return {
    arch: 'qwen2',
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
    qkvBias: true,
    oBias: false,
    mlpBias: false,
    tieWordEmbeddings: c.tie_word_embeddings,
    eosTokenIds: eos === null || eos === undefined ? [] : Array.isArray(eos) ? eos : [eos],
    weights: opts.weights ?? weightNamesUnder(''),
  };
}
