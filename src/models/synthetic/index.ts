// The embedded tiny checkpoint of each family (seeded random weights in the exact HF layout), by model_type: what
// `kvlens demo`, the suite and the family x experiment tests run on. Code above src/models picks a family by name here
// and never imports a family's generator.
import { TINY_LLAVA_NEXT, writeLlavaNextCheckpoint } from './llava-next.js';
import { TINY_LLAVA_ONEVISION, writeLlavaOnevisionCheckpoint } from './llava-onevision.js';
import { TINY_QWEN2_5_VL, TINY_QWEN2_VL, writeQwen2VlCheckpoint } from './qwen2-vl.js';

export interface TinyModel {
  /** Name recorded in results (rows' `model`, the manifest). */
  readonly name: string;
  readonly label: string;
  /** Seed of the weights. */
  readonly seed: number;
  readonly lmLayers: number;
  readonly visionLayers: number;
  /** Write the checkpoint into `dir` (config.json, safetensors, tokenizer, processor configs); returns dir. */
  readonly write: (dir: string) => string;
}

export const TINY_MODELS = {
  llava_onevision: {
    name: 'llava-onevision-tiny', label: 'LLaVA-OneVision', seed: TINY_LLAVA_ONEVISION.seed, lmLayers: TINY_LLAVA_ONEVISION.text.layers,
    visionLayers: TINY_LLAVA_ONEVISION.vision.layers, write: (dir: string) => writeLlavaOnevisionCheckpoint(dir),
  },
  llava_next: {
    name: 'llava-next-tiny', label: 'LLaVA-NeXT (CLIP + Llama-3)', seed: TINY_LLAVA_NEXT.seed, lmLayers: TINY_LLAVA_NEXT.text.layers,
    visionLayers: TINY_LLAVA_NEXT.vision.layers, write: (dir: string) => writeLlavaNextCheckpoint(dir),
  },
  qwen2_vl: {
    name: 'qwen2-vl-tiny', label: 'Qwen2-VL', seed: TINY_QWEN2_VL.seed, lmLayers: TINY_QWEN2_VL.text.layers,
    visionLayers: TINY_QWEN2_VL.vision.depth, write: (dir: string) => writeQwen2VlCheckpoint(dir, TINY_QWEN2_VL),
  },
  qwen2_5_vl: {
    name: 'qwen2.5-vl-tiny', label: 'Qwen2.5-VL', seed: TINY_QWEN2_5_VL.seed, lmLayers: TINY_QWEN2_5_VL.text.layers,
    visionLayers: TINY_QWEN2_5_VL.vision.depth, write: (dir: string) => writeQwen2VlCheckpoint(dir, TINY_QWEN2_5_VL),
  },
} as const satisfies Record<string, TinyModel>;

export type TinyFamily = keyof typeof TINY_MODELS;

export function isTinyFamily(f: string): f is TinyFamily {
  return Object.hasOwn(TINY_MODELS, f);
}
