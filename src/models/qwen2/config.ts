// Qwen2 configuration (HF Qwen2Config, model_type "qwen2") -> the shared DecoderConfig: q/k/v biases, no o/MLP
// bias, head width hidden_size / heads. Omitted fields take transformers 4.46 defaults; nested text_configs
// written by save_pretrained omit them.

import { z } from 'zod';
import { posInt } from '../hf-config.js';
import type { DecoderConfig } from '../lm/config.js';
import { hfDecoderSchema, parseHfDecoder, type DecoderFamily, type DecoderParseOptions } from '../hf-decoder.js';

const qwen2Schema = hfDecoderSchema(['qwen2'], { vocabSize: 151936, intermediateSize: 22016 }, {}, {});

/** Qwen2 attention: q/k/v biases only. */
const QWEN2_BIASES = { qkvBias: true, oBias: false, mlpBias: false };

const QWEN2: DecoderFamily<z.output<typeof qwen2Schema>> = {
  arch: 'qwen2',
  schema: qwen2Schema,
  ropeTheta: 10000,
  ropeTypes: ['default'],
  ropeNote: ' (only unscaled RoPE)',
  biases: () => QWEN2_BIASES,
};

/**
 * The language model of Qwen2-VL / Qwen2.5-VL (Qwen2VLTextConfig / Qwen2_5_VLTextConfig, or the top level of a
 * flat config.json): the Qwen2 decoder with M-RoPE and the VL config classes' own (72B-sized) defaults.
 */
const qwen2VlTextSchema = hfDecoderSchema(['qwen2_vl_text', 'qwen2_5_vl_text', 'qwen2_vl', 'qwen2_5_vl'], { vocabSize: 152064, intermediateSize: 29568 }, {}, {})
  .extend({
    hidden_size: posInt.default(8192),
    num_hidden_layers: posInt.default(80),
    num_attention_heads: posInt.default(64),
    // absent: 8; an explicit null: one KV head per query head (the config class's backward-compatible path)
    num_key_value_heads: z.union([posInt, z.null()]).default(8),
    rms_norm_eps: z.number().positive().default(1e-5),
  });

const QWEN2_VL_TEXT: DecoderFamily<z.output<typeof qwen2VlTextSchema>> = {
  arch: 'qwen2',
  schema: qwen2VlTextSchema,
  biases: () => QWEN2_BIASES,
  ropeTheta: 1_000_000,
  // "mrope" is what Qwen2-VL's own configs call it; transformers rewrites it to "default" with mrope_section kept.
  ropeTypes: ['default', 'mrope'],
  ropeNote: ' (only M-RoPE without scaling)',
  mrope: true,
};

/** A Qwen2-VL / Qwen2.5-VL text config; `arch` is the VL model_type. */
export function parseQwen2VlTextConfig(arch: string, raw: unknown, opts: DecoderParseOptions = {}): DecoderConfig {
  return { ...parseHfDecoder(QWEN2_VL_TEXT, raw, opts), arch };
}

export function parseQwen2Config(raw: unknown, opts: DecoderParseOptions = {}): DecoderConfig {
  return parseHfDecoder(QWEN2, raw, opts);
}
