// CLIPImageProcessor (transformers 4.46.1), the processor of a standalone CLIP vision tower such as
// openai/clip-vit-large-patch14-336: resize so the SHORT side is size.shortest_edge (aspect kept, long side
// int(short_edge * long / short)), centre-crop crop_size (top = (h - ch) // 2, left = (w - cw) // 2), rescale and
// normalise with the OpenAI CLIP mean / std unless the config gives others.

import { z } from 'zod';
import { KvlensInputError } from '../util/errors.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { cropImage, type RgbImage } from './image.js';
import { normalizationFields, normalizationFrom, normalizationTable, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, parseProcessorConfig, resampleFrom, writeChw, type PixelNormalization } from './normalize.js';
import { resizeRgb, type ResampleFilter } from './pil-resize.js';

const posInt = z.number().int().positive();
const schema = z.object({
  image_processor_type: z.string().optional(),
  do_resize: z.boolean().nullish(),
  size: z.union([z.object({ shortest_edge: posInt }), z.object({ height: posInt, width: posInt }), posInt]).nullish(),
  resample: z.number().int().nullish(),
  do_center_crop: z.boolean().nullish(),
  crop_size: z.union([z.object({ height: posInt, width: posInt }), posInt]).nullish(),
  ...normalizationFields,
}).passthrough();

export interface ClipImageConfig {
  readonly doResize: boolean;
  /** shortest_edge resize, or an exact (height, width) */
  readonly size: { readonly shortestEdge: number } | { readonly height: number; readonly width: number };
  readonly resample: ResampleFilter;
  readonly doCenterCrop: boolean;
  readonly cropSize: { readonly height: number; readonly width: number };
  readonly normalization: PixelNormalization;
}

export function parseClipImageConfig(raw: unknown, where = 'preprocessor_config.json'): ClipImageConfig {
  const c = parseProcessorConfig(schema, raw, where);
  if (c.image_processor_type && !/^CLIPImageProcessor/.test(c.image_processor_type)) {
    throw new KvlensInputError(`field "image_processor_type" is "${c.image_processor_type}", expected CLIPImageProcessor`, where);
  }
  const s = c.size ?? { shortest_edge: 224 };
  const crop = c.crop_size ?? { height: 224, width: 224 };
  return {
    doResize: c.do_resize ?? true,
    size: typeof s === 'number' ? { shortestEdge: s } : 'shortest_edge' in s ? { shortestEdge: s.shortest_edge } : s,
    resample: resampleFrom(c.resample, where),
    doCenterCrop: c.do_center_crop ?? true,
    cropSize: typeof crop === 'number' ? { height: crop, width: crop } : crop,
    normalization: normalizationFrom(c, { mean: OPENAI_CLIP_MEAN, std: OPENAI_CLIP_STD }),
  };
}

/** One image through resize + centre crop (HF order). */
export function clipResizeCrop(img: RgbImage, cfg: ClipImageConfig): RgbImage {
  let out = img;
  if (cfg.doResize) {
    if ('shortestEdge' in cfg.size) {
      const t = cfg.size.shortestEdge;
      const { width: w, height: h } = img;
      const [short, long] = w <= h ? [w, h] : [h, w];
      const newLong = Math.trunc((t * long) / short);
      const [nh, nw] = w <= h ? [newLong, t] : [t, newLong];
      out = resizeRgb(img, nw, nh, cfg.resample);
    } else {
      out = resizeRgb(img, cfg.size.width, cfg.size.height, cfg.resample);
    }
  }
  if (cfg.doCenterCrop) {
    const { height: ch, width: cw } = cfg.cropSize;
    if (out.height < ch || out.width < cw) throw new KvlensInputError(`image ${out.width}x${out.height} is smaller than crop_size ${cw}x${ch} (padding crops are not supported)`);
    const top = Math.floor((out.height - ch) / 2);
    const left = Math.floor((out.width - cw) / 2);
    out = cropImage(out, left, top, left + cw, top + ch);
  }
  return out;
}

/** pixel_values [nImages, 3, height, width] float32. */
export function processClipImages(images: readonly RgbImage[], cfg: ClipImageConfig): Tensor<'float32'> {
  if (images.length === 0) throw new KvlensInputError('no images to process');
  const done = images.map((img) => clipResizeCrop(img, cfg));
  const { height: h, width: w } = done[0];
  if (done.some((d) => d.height !== h || d.width !== w)) throw new KvlensInputError('the processed images differ in size (set do_center_crop), so they cannot be batched');
  const out = new Float32Array(done.length * 3 * h * w);
  const tables = normalizationTable(cfg.normalization);
  done.forEach((img, i) => writeChw(img, tables, out, i * 3 * h * w));
  return tensor('float32', [done.length, 3, h, w], out);
}
