// SigLIP vision tower configuration (HF `SiglipVisionConfig`, model_type "siglip_vision_model").
// HF's config.json omits fields that equal their defaults, so every field has the transformers default here.

import { z } from 'zod';
import { KvlensInputError } from '../../util/errors.js';

export const SIGLIP_VISION_MODEL_TYPE = 'siglip_vision_model';

export const siglipVisionConfigSchema = z.object({
  model_type: z.literal(SIGLIP_VISION_MODEL_TYPE).default(SIGLIP_VISION_MODEL_TYPE),
  hidden_size: z.number().int().positive().default(768),
  intermediate_size: z.number().int().positive().default(3072),
  num_hidden_layers: z.number().int().positive().default(12),
  num_attention_heads: z.number().int().positive().default(12),
  num_channels: z.number().int().positive().default(3),
  image_size: z.number().int().positive().default(224),
  patch_size: z.number().int().positive().default(16),
  layer_norm_eps: z.number().positive().default(1e-6),
  hidden_act: z.enum(['gelu_pytorch_tanh', 'gelu', 'gelu_new', 'gelu_fast', 'quick_gelu']).default('gelu_pytorch_tanh'),
  // SiglipVisionTransformer uses the attention-pooling head unless the config says otherwise.
  vision_use_head: z.boolean().default(true),
}).passthrough();

export type SiglipVisionConfig = z.infer<typeof siglipVisionConfigSchema>;

/** Derived sizes used everywhere a SigLIP tower is built or checked. */
export interface SiglipDims {
  readonly dModel: number;
  readonly heads: number;
  readonly dHead: number;
  readonly layers: number;
  readonly patchesPerSide: number;
  /** Tokens per tile: floor(image_size / patch_size)^2 (SigLIP has no CLS token). */
  readonly tokens: number;
}

export function siglipDims(c: SiglipVisionConfig, where = 'vision_config'): SiglipDims {
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new KvlensInputError(`hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`, where);
  }
  // The stride-patch convolution floors: SigLIP-so400m-patch14-384 has 27 x 27 patches (the last 6 pixel rows and
  // columns are never seen), exactly as torch's Conv2d and HF's image_size // patch_size.
  if (c.image_size < c.patch_size) {
    throw new KvlensInputError(`image_size ${c.image_size} is smaller than patch_size ${c.patch_size}`, where);
  }
  const side = Math.floor(c.image_size / c.patch_size);
  return {
    dModel: c.hidden_size,
    heads: c.num_attention_heads,
    dHead: c.hidden_size / c.num_attention_heads,
    layers: c.num_hidden_layers,
    patchesPerSide: side,
    tokens: side * side,
  };
}

/** Parse a vision config object; errors name the file and the field. */
export function parseSiglipVisionConfig(raw: unknown, where: string): SiglipVisionConfig {
  const r = siglipVisionConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue.path.join('.');
    if (field === 'model_type') {
      throw new KvlensInputError(
        `field "model_type" is ${JSON.stringify((raw as Record<string, unknown>)?.model_type)}; supported vision towers: "${SIGLIP_VISION_MODEL_TYPE}"`, where);
    }
    throw new KvlensInputError(`field "${field}": ${issue.message}`, where);
  }
  return r.data;
}
