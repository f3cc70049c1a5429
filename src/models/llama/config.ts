// Llama configuration (HF LlamaConfig, model_type "llama") -> the shared DecoderConfig. The Llama LM is the
// shared decoder with different data: no attention bias unless attention_bias, optional MLP bias, explicit
// head_dim, rope_theta, rms_norm_eps. Omitted fields take transformers 4.46 defaults.

import { z } from 'zod';
import type { DecoderConfig } from '../lm/config.js';
import { posInt } from '../hf-config.js';
import { hfDecoderSchema, parseHfDecoder, type DecoderFamily, type DecoderParseOptions } from '../hf-decoder.js';

const llamaSchema = hfDecoderSchema(['llama'], { vocabSize: 32000, intermediateSize: 11008 }, { head_dim: posInt.nullish() }, {
  attention_bias: z.boolean().default(false),
  mlp_bias: z.boolean().default(false),
  pretraining_tp: z.number().int().default(1),
});

const LLAMA: DecoderFamily<z.output<typeof llamaSchema>> = {
  arch: 'llama',
  schema: llamaSchema,
  ropeTheta: 10000,
  ropeTypes: ['default'],
  ropeNote: ' (only unscaled RoPE, as in Llama-3 / Llama-2)',
  biases: (c) => ({ qkvBias: c.attention_bias, oBias: c.attention_bias, mlpBias: c.mlp_bias }),
  headDim: (c) => c.head_dim,
};

export function parseLlamaConfig(raw: unknown, opts: DecoderParseOptions = {}): DecoderConfig {
  return parseHfDecoder(LLAMA, raw, opts);
}
