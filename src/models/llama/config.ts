// Llama configuration (HF LlamaConfig, model_type "llama") -> the shared DecoderConfig. The Llama LM is the
// shared decoder with different data: no attention bias unless attention_bias, optional MLP bias, explicit
// head_dim, rope_theta, rms_norm_eps. Omitted fields take transformers 4.46 defaults.

import { z } from 'zod';
import { KvlensInputError } from '../../util/errors.js';
import { weightNamesUnder, type DecoderConfig, type DecoderWeightNames } from '../lm/config.js';

const posInt = z.number().int().positive();

const llamaSchema = z.object({
  model_type: z.literal('llama').optional(),
  vocab_size: posInt.default(32000),
  hidden_size: posInt.default(4096),
  intermediate_size: posInt.default(11008),
  num_hidden_layers: posInt.default(32),
  num_attention_heads: posInt.default(32),
  num_key_value_heads: posInt.nullish(),
  head_dim: posInt.nullish(),
  hidden_act: z.enum(['silu', 'gelu', 'gelu_pytorch_tanh']).default('silu'),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().default(10000),
  rope_scaling: z.union([z.null(), z.object({ type: z.string().optional(), rope_type: z.string().optional() }).passthrough()]).default(null),
  attention_bias: z.boolean().default(false),
  mlp_bias: z.boolean().default(false),
  pretraining_tp: z.number().int().default(1),
  tie_word_embeddings: z.boolean().default(false),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int()), z.null()]).optional(),
}).passthrough();

export function parseLlamaConfig(raw: unknown, opts: { where?: string; weights?: DecoderWeightNames } = {}): DecoderConfig {
  const where = opts.where ?? 'config.json';
  const r = llamaSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new KvlensInputError(`field "${issue.path.join('.')}": ${issue.message}`, where);
  }
  const c = r.data;
  const scaling = c.rope_scaling;
  const ropeType = scaling ? scaling.rope_type ?? scaling.type ?? 'default' : 'default';
  if (ropeType !== 'default') {
    throw new KvlensInputError(`field "rope_scaling": rope type "${ropeType}" is not supported (only unscaled RoPE, as in Llama-3 / Llama-2)`, where);
  }
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new KvlensInputError(`num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${numKvHeads}`, where);
  }
  if (!c.head_dim && c.hidden_size % c.num_attention_heads !== 0) {
    throw new KvlensInputError(`hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads} and no head_dim is given`, where);
  }
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (headDim % 2 !== 0) throw new KvlensInputError(`head dimension ${headDim} must be even for RoPE`, where);
  const eos = c.eos_token_id;
  return {
    arch: 'llama',
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
    qkvBias: c.attention_bias,
    oBias: c.attention_bias,
    mlpBias: c.mlp_bias,
    tieWordEmbeddings: c.tie_word_embeddings,
    eosTokenIds: eos === null || eos === undefined ? [] : Array.isArray(eos) ? eos : [eos],
    weights: opts.weights ?? weightNamesUnder(''),
  };
}
