// CLIP vision tower configuration (HF `CLIPVisionConfig`, model_type "clip_vision_model"), as used by LLaVA-NeXT.
// save_pretrained omits default-valued nested fields, so every field carries the transformers 4.46 default.

import { z } from 'zod';
import { KvlensInputError } from '../../util/errors.js';

export const CLIP_VISION_MODEL_TYPE = 'clip_vision_model';

export const clipVisionConfigSchema = z.object({
  model_type: z.literal(CLIP_VISION_MODEL_TYPE).default(CLIP_VISION_MODEL_TYPE),
  hidden_size: z.number().int().positive().default(768),
  intermediate_size: z.number().int().positive().default(3072),
  num_hidden_layers: z.number().int().positive().default(12),
  num_attention_heads: z.number().int().positive().default(12),
  num_channels: z.number().int().positive().default(3),
  image_size: z.number().int().positive().default(224),
  patch_size: z.number().int().positive().default(32),
  layer_norm_eps: z.number().positive().default(1e-5),
  hidden_act: z.enum(['quick_gelu', 'gelu', 'gelu_pytorch_tanh', 'gelu_new', 'gelu_fast']).default('quick_gelu'),
}).passthrough();

export type ClipVisionConfig = z.infer<typeof clipVisionConfigSchema>;

/** Derived sizes of a CLIP tower. */
export interface ClipDims {
  readonly dModel: number;
  readonly heads: number;
  readonly dHead: number;
  readonly layers: number;
  readonly patchesPerSide: number;
  /** Patch tokens per tile (without the CLS token). */
  readonly patches: number;
  /** Tokens per tile including CLS: patches + 1. */
  readonly tokens: number;
}

export function clipDims(c: ClipVisionConfig, where = 'vision_config'): ClipDims {
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new KvlensInputError(`hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`, where);
  }
  // CLIP's Conv2d (stride = patch) drops a remainder, exactly like SigLIP's.
  const side = Math.floor(c.image_size / c.patch_size);
  return {
    dModel: c.hidden_size,
    heads: c.num_attention_heads,
    dHead: c.hidden_size / c.num_attention_heads,
    layers: c.num_hidden_layers,
    patchesPerSide: side,
    patches: side * side,
    tokens: side * side + 1,
  };
}

/** Parse a CLIP vision config (a whole CLIPConfig nests it under vision_config; pass that object). */
export function parseClipVisionConfig(raw: unknown, where: string): ClipVisionConfig {
  const r = clipVisionConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue.path.join('.');
    if (field === 'model_type') {
      throw new KvlensInputError(
        `field "model_type" is ${JSON.stringify((raw as Record<string, unknown>)?.model_type)}; supported vision towers here: "${CLIP_VISION_MODEL_TYPE}"`, where);
    }
    throw new KvlensInputError(`field "${field}": ${issue.message}`, where);
  }
  return r.data;
}
