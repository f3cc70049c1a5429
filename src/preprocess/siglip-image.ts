// SiglipImageProcessor (transformers 4.46.1): squash-resize every image to size.height x size.width with PIL,
// rescale and normalise. No crop, no aspect preservation.

import { z } from 'zod';
import { KvlensInputError } from '../util/errors.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import type { RgbImage } from './image.js';
import { normalizationFields, normalizationFrom, normalizationTable, parseProcessorConfig, resampleFrom, writeChw, type PixelNormalization } from './normalize.js';
import { resizeRgb, type ResampleFilter } from './pil-resize.js';

const schema = z.object({
  image_processor_type: z.string().optional(),
  do_resize: z.boolean().nullish(),
  size: z.object({ height: z.number().int().positive(), width: z.number().int().positive() }).nullish(),
  resample: z.number().int().nullish(),
  ...normalizationFields,
}).passthrough();

export interface SquashImageConfig {
  readonly doResize: boolean;
  readonly size: { readonly height: number; readonly width: number };
  readonly resample: ResampleFilter;
  readonly normalization: PixelNormalization;
}

export function parseSiglipImageConfig(raw: unknown, where = 'preprocessor_config.json'): SquashImageConfig {
  const c = parseProcessorConfig(schema, raw, where);
  if (c.image_processor_type && !c.image_processor_type.startsWith('SiglipImageProcessor')) {
    throw new KvlensInputError(`field "image_processor_type" is "${c.image_processor_type}", expected SiglipImageProcessor`, where);
  }
  return {
    doResize: c.do_resize ?? true,
    size: c.size ?? { height: 224, width: 224 },
    resample: resampleFrom(c.resample, where),
    normalization: normalizationFrom(c, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }),
  };
}

/** pixel_values [nImages, 3, height, width] float32. */
export function processSiglipImages(images: readonly RgbImage[], cfg: SquashImageConfig): Tensor<'float32'> {
  if (images.length === 0) throw new KvlensInputError('no images to process');
  const { height, width } = cfg.size;
  const resized = images.map((img) => {
    if (cfg.doResize) return resizeRgb(img, width, height, cfg.resample);
    if (img.width !== images[0].width || img.height !== images[0].height) {
      throw new KvlensInputError('do_resize is false but the images differ in size, so they cannot be batched');
    }
    return img;
  });
  const h = resized[0].height;
  const w = resized[0].width;
  const out = new Float32Array(images.length * 3 * h * w);
  const tables = normalizationTable(cfg.normalization);
  resized.forEach((img, i) => writeChw(img, tables, out, i * 3 * h * w));
  return tensor('float32', [images.length, 3, h, w], out);
}
