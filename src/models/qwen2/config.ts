// Qwen2 configuration (HF Qwen2Config, model_type "qwen2") -> the shared DecoderConfig: q/k/v biases, no o/MLP
// bias, head width hidden_size / heads. Omitted fields take transformers 4.46 defaults; nested text_configs
// written by save_pretrained omit them.

import type { z } from 'zod';
import type { DecoderConfig } from '../lm/config.js';
import { hfDecoderSchema, parseHfDecoder, type DecoderFamily, type DecoderParseOptions } from '../hf-decoder.js';

const qwen2Schema = hfDecoderSchema('qwen2', { vocabSize: 151936, intermediateSize: 22016 }, {}, {});

const QWEN2: DecoderFamily<z.output<typeof qwen2Schema>> = {
  arch: 'qwen2',
  schema: qwen2Schema,
  ropeNote: ' (only unscaled RoPE)',
  biases: () => ({ qkvBias: true, oBias: false, mlpBias: false }),
};

export function parseQwen2Config(raw: unknown, opts: DecoderParseOptions = {}): DecoderConfig {
  return parseHfDecoder(QWEN2, raw, opts);
}
