// Qwen2VLImageProcessor (transformers 4.46.1; also Qwen2.5-VL's) for still images:
// smart_resize to multiples of patch*merge (Python round = half to EVEN), PIL resize, rescale + normalise, the
// frame repeated temporal_patch_size times, then flattened patches [nPatches, 3 * T * p * p] ordered in
// merge x merge windows, plus image_grid_thw (t, h, w in patches).

import { z } from 'zod';
import { KvlensInputError } from '../util/errors.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import type { RgbImage } from './image.js';
import {
  normalizationFields, normalizationFrom, normalizationTable, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, parseProcessorConfig, resampleFrom, writeChw,
  type PixelNormalization,
} from './normalize.js';
import { resizeRgb, type ResampleFilter } from './pil-resize.js';
import { imageProcessorKind } from './processor-files.js';

// Qwen2VLImageProcessor's mean / std are per-channel lists only (no single value for all channels).
const triple = z.tuple([z.number(), z.number(), z.number()]);
const schema = z.object({
  image_processor_type: z.string().optional(),
  min_pixels: z.number().int().positive().nullish(),
  max_pixels: z.number().int().positive().nullish(),
  // {shortest_edge, longest_edge} in pixels (transformers >= 4.5x); early Qwen2-VL saves spelled it {min_pixels, max_pixels}
  size: z.object({
    shortest_edge: z.number().int().positive().optional(), longest_edge: z.number().int().positive().optional(),
    min_pixels: z.number().int().positive().optional(), max_pixels: z.number().int().positive().optional(),
  }).passthrough().nullish(),
  patch_size: z.number().int().positive().nullish(),
  temporal_patch_size: z.number().int().positive().nullish(),
  merge_size: z.number().int().positive().nullish(),
  resample: z.number().int().nullish(),
  do_resize: z.boolean().nullish(),
  ...normalizationFields,
  image_mean: triple.nullish(),
  image_std: triple.nullish(),
}).passthrough();

export interface Qwen2VLImageConfig extends PixelNormalization {
  /** the processor class kvlens reproduces (a "Fast" type name maps to its slow twin) */
  readonly processorType: string;
  readonly minPixels: number;
  readonly maxPixels: number;
  readonly patchSize: number;
  readonly temporalPatchSize: number;
  readonly mergeSize: number;
  readonly doResize: boolean;
  readonly resample: ResampleFilter;
  /** Which of two disagreeing spellings was used, and other caveats, one sentence each. */
  readonly notes: readonly string[];
}

/**
 * One pixel bound as Qwen2VLImageProcessor resolves it: min_pixels / max_pixels (top level) override
 * size.shortest_edge / size.longest_edge, which override the older size.min_pixels / size.max_pixels.
 */
function pixelBound(spellings: ReadonlyArray<readonly [string, number | null | undefined]>, fallback: number, where: string, notes: string[]): number {
  const given = spellings.filter((s): s is readonly [string, number] => typeof s[1] === 'number');
  if (given.length === 0) return fallback;
  const [field, value] = given[0];
  for (const [other, v] of given.slice(1)) if (v !== value) notes.push(`${where}: "${field}" ${value} used; "${other}" ${v} differs and is overridden, as in transformers`);
  return value;
}

export function parseQwen2VLImageConfig(raw: unknown, where = 'preprocessor_config.json'): Qwen2VLImageConfig {
  const c = parseProcessorConfig(schema, raw, where);
  const kind = imageProcessorKind(c.image_processor_type ?? 'Qwen2VLImageProcessor', ['Qwen2VLImageProcessor', 'Qwen2_5_VLImageProcessor'], where);
  const notes: string[] = kind.note ? [kind.note] : [];
  const minPixels = pixelBound([['min_pixels', c.min_pixels], ['size.shortest_edge', c.size?.shortest_edge], ['size.min_pixels', c.size?.min_pixels]], 56 * 56, where, notes);
  const maxPixels = pixelBound([['max_pixels', c.max_pixels], ['size.longest_edge', c.size?.longest_edge], ['size.max_pixels', c.size?.max_pixels]], 28 * 28 * 1280, where, notes);
  if (minPixels > maxPixels) throw new KvlensInputError(`the minimum pixel count ${minPixels} exceeds the maximum ${maxPixels} (min_pixels / size.shortest_edge vs max_pixels / size.longest_edge)`, where);
  return {
    processorType: kind.base,
    notes,
    minPixels,
    maxPixels,
    patchSize: c.patch_size ?? 14,
    temporalPatchSize: c.temporal_patch_size ?? 2,
    mergeSize: c.merge_size ?? 2,
    doResize: c.do_resize ?? true,
    resample: resampleFrom(c.resample, where),
    ...normalizationFrom(c, { mean: OPENAI_CLIP_MEAN, std: OPENAI_CLIP_STD }),
  };
}

/** Python 3 round(): nearest integer, ties to even. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** transformers' smart_resize: (height, width) divisible by `factor`, pixel count within [minPixels, maxPixels]. */
export function smartResize(height: number, width: number, factor: number, minPixels: number, maxPixels: number): { height: number; width: number } {
  if (height < factor || width < factor) {
    throw new KvlensInputError(`image ${height}x${width} is smaller than the ${factor}-px minimum side of this processor`);
  }
  if (Math.max(height, width) / Math.min(height, width) > 200) {
    throw new KvlensInputError(`image ${height}x${width} has an aspect ratio above 200`);
  }
  let h = pyRound(height / factor) * factor;
  let w = pyRound(width / factor) * factor;
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.floor(height / beta / factor) * factor;
    w = Math.floor(width / beta / factor) * factor;
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return { height: h, width: w };
}

export interface Qwen2VLProcessed {
  /** [sum of t*h*w over images, 3 * temporal * patch * patch] float32, images concatenated */
  readonly pixelValues: Tensor<'float32'>;
  /** [nImages, 3] int64 (t, h, w) in patches */
  readonly imageGridThw: Tensor<'int64'>;
}

export function processQwen2VLImages(images: readonly RgbImage[], cfg: Qwen2VLImageConfig): Qwen2VLProcessed {
  if (images.length === 0) throw new KvlensInputError('no images to process');
  const p = cfg.patchSize;
  const T = cfg.temporalPatchSize;
  const m = cfg.mergeSize;
  const rowLen = 3 * T * p * p;
  const tables = normalizationTable(cfg);
  const chunks: Float32Array[] = [];
  const thw: bigint[] = [];
  for (const img of images) {
    const size = cfg.doResize ? smartResize(img.height, img.width, p * m, cfg.minPixels, cfg.maxPixels) : { height: img.height, width: img.width };
    const resized = cfg.doResize ? resizeRgb(img, size.width, size.height, cfg.resample) : img;
    const H = resized.height;
    const W = resized.width;
    const chw = new Float32Array(3 * H * W); // [3, H, W]
    writeChw(resized, tables, chw, 0);
    const gh = H / p;
    const gw = W / p;
    if (!Number.isInteger(gh / m) || !Number.isInteger(gw / m)) {
      throw new KvlensInputError(`image ${H}x${W} is not divisible into ${p * m}-px merge windows (do_resize false?)`);
    }
    const out = new Float32Array(gh * gw * rowLen);
    // rows ordered (block row, block col, in-block row, in-block col); columns (channel, frame, py, px)
    let row = 0;
    for (let bh = 0; bh < gh / m; bh++) {
      for (let bw = 0; bw < gw / m; bw++) {
        for (let mh = 0; mh < m; mh++) {
          for (let mw = 0; mw < m; mw++, row++) {
            const y0 = (bh * m + mh) * p;
            const x0 = (bw * m + mw) * p;
            let col = row * rowLen;
            for (let c = 0; c < 3; c++) {
              for (let t = 0; t < T; t++) { // still image: every frame is the same picture
                for (let py = 0; py < p; py++) {
                  const src = c * H * W + (y0 + py) * W + x0;
                  out.set(chw.subarray(src, src + p), col);
                  col += p;
                }
              }
            }
          }
        }
      }
    }
    chunks.push(out);
    thw.push(1n, BigInt(gh), BigInt(gw));
  }
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const data = new Float32Array(total);
  let off = 0;
  for (const c of chunks) { data.set(c, off); off += c.length; }
  return {
    pixelValues: tensor('float32', [total / rowLen, rowLen], data),
    imageGridThw: tensor('int64', [images.length, 3], BigInt64Array.from(thw)),
  };
}
