// Qwen2-VL / Qwen2.5-VL's differences from the shared interface, as data: ONE native grid per image (the merged
// (H/28) x (W/28) tokens of the smart-resized image, no newlines, no thumbnail), stored as view "highres"; the ViT's
// own taps are one row per 14 px patch (pixel_values order), stored on the patch grid view "patches"; the merger
// (projector.out) is one row per image token, like image.packed. ChatML prompts with <|vision_start|><|image_pad|>.

import type { FamilySpec, ViewSpec } from '../types.js';

const VIEWS: readonly ViewSpec[] = [
  { name: 'highres', positions: 'sequence', description: 'the native merged grid: one token per 28 x 28 px of the smart-resized image' },
  { name: 'patches', positions: 'tower', description: 'the vision tower\'s 14 x 14 px patch grid (vision.* taps)' },
];

function qwenSpec(family: 'qwen2_vl' | 'qwen2_5_vl'): FamilySpec {
  return {
    family,
    views: VIEWS,
    towerView: 'patches',
    projectorView: 'highres',
    visionTapLayout: { kind: 'rows' },
    projectorLayout: 'rows',
    towers: { vision: 'qwen-vit', decoder: 'qwen2' },
    originalEncoder: family === 'qwen2_vl'
      ? { kind: 'none', reason: 'Qwen2-VL\'s ViT (initialised from DFN) has no released un-finetuned tower with its 2-D RoPE and merger; there is no original encoder to compare against' }
      : { kind: 'none', reason: 'Qwen2.5-VL\'s ViT was trained from scratch with window attention; there is no original (un-finetuned) encoder to compare against' },
    prompt: { builtinTemplate: 'builtin:qwen2vl', imagePlaceholder: '<|vision_start|><|image_pad|><|vision_end|>' },
    nativeResolution: 'native-grid',
  };
}

export const QWEN2_VL_SPEC = qwenSpec('qwen2_vl');
export const QWEN2_5_VL_SPEC = qwenSpec('qwen2_5_vl');

/**
 * Position of patch (r, c) of an image's h x w patch grid among its rows in pixel_values order: patches come in
 * merge x merge units, units in raster order (transformers' (t, h/m, w/m, m, m) flattening), t = 1 for images.
 */
export function patchGridPositions(h: number, w: number, merge: number): number[] {
  const out = new Array<number>(h * w);
  const unitsPerRow = w / merge;
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const unit = Math.floor(r / merge) * unitsPerRow + Math.floor(c / merge);
      out[r * w + c] = unit * merge * merge + (r % merge) * merge + (c % merge);
    }
  }
  return out;
}
