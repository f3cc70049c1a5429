// SigLIP vision tower configuration (HF `SiglipVisionConfig`, model_type "siglip_vision_model").
// HF's config.json omits fields that equal their defaults, so every field has the transformers default here.

import { z } from 'zod';
import { KvlensInputError } from '../../util/errors.js';
import { parseVitConfig, vitDims, vitTowerSchema, type VitDims } from '../vision/vit-config.js';

export const SIGLIP_VISION_MODEL_TYPE = 'siglip_vision_model';

export const siglipVisionConfigSchema = vitTowerSchema(SIGLIP_VISION_MODEL_TYPE, {
  patchSize: 16, layerNormEps: 1e-6, acts: ['gelu_pytorch_tanh', 'gelu', 'gelu_new', 'gelu_fast', 'quick_gelu'],
}, {
  // SiglipVisionTransformer uses the attention-pooling head unless the config says otherwise.
  vision_use_head: z.boolean().default(true),
});

export type SiglipVisionConfig = z.infer<typeof siglipVisionConfigSchema>;

/** Derived sizes used everywhere a SigLIP tower is built or checked. */
export interface SiglipDims extends VitDims {
  /** Tokens per tile: floor(image_size / patch_size)^2 (SigLIP has no CLS token). */
  readonly tokens: number;
}

export function siglipDims(c: SiglipVisionConfig, where = 'vision_config'): SiglipDims {
  const d = vitDims(c, where);
  // SigLIP-so400m-patch14-384 has 27 x 27 patches (the last 6 pixel rows and columns are never seen).
  if (c.image_size < c.patch_size) {
    throw new KvlensInputError(`image_size ${c.image_size} is smaller than patch_size ${c.patch_size}`, where);
  }
  return { ...d, tokens: d.patchesPerSide * d.patchesPerSide };
}

/** Parse a vision config object; errors name the file and the field. */
export function parseSiglipVisionConfig(raw: unknown, where: string): SiglipVisionConfig {
  return parseVitConfig(siglipVisionConfigSchema, SIGLIP_VISION_MODEL_TYPE, raw, where);
}
