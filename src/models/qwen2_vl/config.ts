// Qwen2-VL ("qwen2_vl", transformers 4.46) and Qwen2.5-VL ("qwen2_5_vl", transformers 4.49) configurations.
// Both are a Qwen2 decoder with M-RoPE plus a ViT with 2-D RoPE and a 2x2 patch merger; the towers differ as data:
//   qwen2_vl:   LayerNorm, fc1 -> act (quick_gelu) -> fc2 MLP, every block attends over the whole image,
//               width embed_dim, merger output = vision hidden_size;
//   qwen2_5_vl: RMSNorm, gated (SwiGLU) MLP with biases, window attention except fullatt_block_indexes,
//               width hidden_size, merger output = out_hidden_size.
// Omitted fields take the transformers defaults of each config class.

import { z } from 'zod';
import { KvlensInputError } from '../../util/errors.js';
import { weightNamesUnder, type DecoderConfig } from '../lm/config.js';
import { modelTypeGiven, parseHfConfig, posInt } from '../hf-config.js';
import { parseQwen2VlTextConfig } from '../qwen2/config.js';

export const QWEN2_VL_MODEL_TYPES = ['qwen2_vl', 'qwen2_5_vl'] as const;
export type Qwen2VlVariant = (typeof QWEN2_VL_MODEL_TYPES)[number];

const act = z.enum(['quick_gelu', 'gelu', 'gelu_pytorch_tanh', 'silu']);

const qwen2VisionSchema = z.object({
  depth: posInt.default(32),
  embed_dim: posInt.default(1280),
  hidden_size: posInt.default(3584),
  hidden_act: act.default('quick_gelu'),
  mlp_ratio: z.number().positive().default(4),
  num_heads: posInt.default(16),
  in_channels: posInt.default(3),
  patch_size: posInt.default(14),
  spatial_merge_size: posInt.default(2),
  temporal_patch_size: posInt.default(2),
}).passthrough();

const qwen25VisionSchema = z.object({
  depth: posInt.default(32),
  hidden_size: posInt.default(3584),
  hidden_act: act.default('silu'),
  intermediate_size: posInt.default(3420),
  num_heads: posInt.default(16),
  in_channels: posInt.default(3),
  patch_size: posInt.default(14),
  spatial_merge_size: posInt.default(2),
  temporal_patch_size: posInt.default(2),
  tokens_per_second: z.number().nonnegative().default(4),
  window_size: posInt.default(112),
  out_hidden_size: posInt.default(3584),
  fullatt_block_indexes: z.array(z.number().int().nonnegative()).default([7, 15, 23, 31]),
}).passthrough();

const topSchema = z.object({
  model_type: z.enum(QWEN2_VL_MODEL_TYPES),
  image_token_id: z.number().int().nonnegative().default(151655),
  video_token_id: z.number().int().nonnegative().default(151656),
  vision_start_token_id: z.number().int().nonnegative().default(151652),
  vision_end_token_id: z.number().int().nonnegative().default(151653),
  vision_config: z.record(z.string(), z.unknown()).optional(),
  // transformers >= 4.52 nests the language model's fields here (model_type qwen2_vl_text / qwen2_5_vl_text);
  // older saves keep them at the top level.
  text_config: z.record(z.string(), z.unknown()).nullish(),
}).passthrough();

/** The vision tower as data. */
export interface QwenVisionSpec {
  readonly variant: Qwen2VlVariant;
  readonly depth: number;
  /** tower width */
  readonly dim: number;
  readonly heads: number;
  readonly headDim: number;
  readonly intermediate: number;
  readonly act: z.infer<typeof act>;
  readonly norm: 'layer' | 'rms';
  readonly mlp: 'fc' | 'gated';
  readonly inChannels: number;
  readonly patchSize: number;
  readonly temporalPatchSize: number;
  readonly mergeSize: number;
  /** merger output width (= the LM hidden size) */
  readonly outDim: number;
  /** Qwen2.5-VL: window side in merged units (window_size / merge / patch); undefined = full attention everywhere */
  readonly windowUnits?: number;
  /** blocks that attend over the whole image (Qwen2.5-VL); every other block uses windows */
  readonly fullAttBlocks: readonly number[];
  /** Qwen2.5-VL: seconds-to-position scale of the temporal axis (videos only) */
  readonly tokensPerSecond?: number;
  /** flattened patch length C * T * P * P */
  readonly patchDim: number;
}

export interface Qwen2VlConfig {
  readonly variant: Qwen2VlVariant;
  readonly imageTokenId: number;
  readonly videoTokenId: number;
  readonly visionStartTokenId: number;
  readonly visionEndTokenId: number;
  readonly vision: QwenVisionSpec;
  /** The Qwen2 decoder with mropeSection set. */
  readonly text: DecoderConfig;
}

function visionSpec(variant: Qwen2VlVariant, raw: unknown, where: string): QwenVisionSpec {
  if (variant === 'qwen2_vl') {
    const v = parseHfConfig(qwen2VisionSchema, raw ?? {}, where);
    return finishVision({
      variant, depth: v.depth, dim: v.embed_dim, heads: v.num_heads, headDim: v.embed_dim / v.num_heads,
      intermediate: Math.trunc(v.embed_dim * v.mlp_ratio), act: v.hidden_act, norm: 'layer', mlp: 'fc', inChannels: v.in_channels,
      patchSize: v.patch_size, temporalPatchSize: v.temporal_patch_size, mergeSize: v.spatial_merge_size, outDim: v.hidden_size,
      fullAttBlocks: [], patchDim: v.in_channels * v.temporal_patch_size * v.patch_size * v.patch_size,
    }, where);
  }
  const v = parseHfConfig(qwen25VisionSchema, raw ?? {}, where);
  const unit = v.spatial_merge_size * v.patch_size;
  if (v.window_size % unit !== 0) throw new KvlensInputError(`field "window_size": ${v.window_size} is not a multiple of spatial_merge_size * patch_size = ${unit}`, where);
  for (const b of v.fullatt_block_indexes) if (b >= v.depth) throw new KvlensInputError(`field "fullatt_block_indexes": block ${b} does not exist in a depth-${v.depth} tower`, where);
  return finishVision({
    variant, depth: v.depth, dim: v.hidden_size, heads: v.num_heads, headDim: v.hidden_size / v.num_heads,
    intermediate: v.intermediate_size, act: v.hidden_act, norm: 'rms', mlp: 'gated', inChannels: v.in_channels,
    patchSize: v.patch_size, temporalPatchSize: v.temporal_patch_size, mergeSize: v.spatial_merge_size, outDim: v.out_hidden_size,
    windowUnits: v.window_size / unit, fullAttBlocks: v.fullatt_block_indexes, tokensPerSecond: v.tokens_per_second,
    patchDim: v.in_channels * v.temporal_patch_size * v.patch_size * v.patch_size,
  }, where);
}

function finishVision(s: QwenVisionSpec, where: string): QwenVisionSpec {
  if (!Number.isInteger(s.headDim) || s.headDim % 4 !== 0) {
    throw new KvlensInputError(`vision head dimension ${s.dim}/${s.heads} must be an integer multiple of 4 (2-D rotary embedding)`, where);
  }
  return s;
}

/**
 * Where the language model's fields are, as the config classes decide it: text_config when present (transformers
 * >= 4.52 saves), else the top level (older saves: Qwen2VLConfig then took its text fields from there). The
 * nested form inherits tie_word_embeddings and eos_token_id from the top level when it leaves them out.
 */
function textFields(raw: Record<string, unknown>, textConfig: Record<string, unknown> | null | undefined, where: string): { fields: Record<string, unknown>; where: string } {
  if (!textConfig) return { fields: raw, where };
  const fields: Record<string, unknown> = { ...textConfig };
  for (const k of ['tie_word_embeddings', 'eos_token_id']) if (fields[k] === undefined && raw[k] !== undefined) fields[k] = raw[k];
  return { fields, where: `${where} (text_config)` };
}

export function parseQwen2VlConfig(raw: unknown, where = 'config.json'): Qwen2VlConfig {
  const c = parseHfConfig(topSchema, raw, where, (field) =>
    (field === 'model_type' ? `${modelTypeGiven(raw)}, expected one of ${QWEN2_VL_MODEL_TYPES.join(', ')}` : undefined));
  const vision = visionSpec(c.model_type, c.vision_config, `${where} (vision_config)`);
  const text = textFields(raw as Record<string, unknown>, c.text_config, where);
  const base = parseQwen2VlTextConfig(c.model_type, text.fields, { where: text.where, weights: weightNamesUnder('') });
  if (vision.outDim !== base.hiddenSize) {
    throw new KvlensInputError(`the vision merger outputs ${vision.outDim} features but the language model's hidden_size is ${base.hiddenSize}`, where);
  }
  return {
    variant: c.model_type,
    imageTokenId: c.image_token_id,
    videoTokenId: c.video_token_id,
    visionStartTokenId: c.vision_start_token_id,
    visionEndTokenId: c.vision_end_token_id,
    vision,
    text: base,
  };
}
