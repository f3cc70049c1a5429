// CLIP vision tower configuration (HF `CLIPVisionConfig`, model_type "clip_vision_model"), as used by LLaVA-NeXT.
// save_pretrained omits default-valued nested fields, so every field carries the transformers 4.46 default.

import type { z } from 'zod';
import { parseVitConfig, vitDims, vitTowerSchema, type VitDims } from '../vision/vit-config.js';

export const CLIP_VISION_MODEL_TYPE = 'clip_vision_model';

export const clipVisionConfigSchema = vitTowerSchema(CLIP_VISION_MODEL_TYPE, {
  patchSize: 32, layerNormEps: 1e-5, acts: ['quick_gelu', 'gelu', 'gelu_pytorch_tanh', 'gelu_new', 'gelu_fast'],
}, {});

export type ClipVisionConfig = z.infer<typeof clipVisionConfigSchema>;

/** Derived sizes of a CLIP tower. */
export interface ClipDims extends VitDims {
  /** Patch tokens per tile (without the CLS token). */
  readonly patches: number;
  /** Tokens per tile including CLS: patches + 1. */
  readonly tokens: number;
}

export function clipDims(c: ClipVisionConfig, where = 'vision_config'): ClipDims {
  const d = vitDims(c, where);
  const patches = d.patchesPerSide * d.patchesPerSide;
  return { ...d, patches, tokens: patches + 1 };
}

/** Parse a CLIP vision config (a whole CLIPConfig nests it under vision_config; pass that object). */
export function parseClipVisionConfig(raw: unknown, where: string): ClipVisionConfig {
  return parseVitConfig(clipVisionConfigSchema, CLIP_VISION_MODEL_TYPE, raw, where);
}
