// LlavaOnevisionImageProcessor (transformers 4.46.1) for still images:
//   tile 0 = whole image squashed to the tile size (PIL resize), tiles 1.. = the anyres canvas cut row-major
//   (aspect-preserving PIL resize onto the best pinpoint, zero padding with the 4.46 odd-padding quirk, short
//   edge tiles resized back to the tile size), rescale + normalise, then images zero-padded on the tile axis.
// Also LLaVA-NeXT's LlavaNextImageProcessor: same tiling and pixel arithmetic, different defaults.

import { z } from 'zod';
import { KvlensInputError } from '../util/errors.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { anyresLayout, type AnyresLayout, type Pinpoint, type Size } from './anyres.js';
import { cropImage, padImage, type RgbImage } from './image.js';
import { normalizationFields, normalizationFrom, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, normalizationTable, parseProcessorConfig, resampleFrom, writeChw, type PixelNormalization } from './normalize.js';
import { resizeRgb, type ResampleFilter } from './pil-resize.js';
import { imageProcessorKind } from './processor-files.js';

/** transformers' LlavaOnevisionImageProcessor default pinpoints: 384 * {1..6} on each side. */
function defaultOnevisionPinpoints(): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 1; i <= 6; i++) for (let j = 1; j <= 6; j++) out.push([384 * i, 384 * j]);
  return out;
}

const sizeSchema = z.union([
  z.object({ height: z.number().int().positive(), width: z.number().int().positive() }),
  z.object({ shortest_edge: z.number().int().positive() }),
]);

const schema = z.object({
  image_processor_type: z.string().optional(),
  do_resize: z.boolean().nullish(),
  size: sizeSchema.nullish(),
  image_grid_pinpoints: z.array(z.tuple([z.number().int().positive(), z.number().int().positive()])).min(1).nullish(),
  resample: z.number().int().nullish(),
  ...normalizationFields,
  do_pad: z.boolean().nullish(),
  do_convert_rgb: z.boolean().nullish(),
}).passthrough();

/** The validated image-processor settings (preprocessor_config.json) that matter for still images. */
export interface AnyresImageConfig {
  readonly processorType: string;
  /** square tile side in pixels (size.height == size.width, or shortest_edge) */
  readonly tileSize: number;
  readonly pinpoints: readonly Pinpoint[];
  readonly resample: ResampleFilter;
  readonly normalization: PixelNormalization;
  /** zero-pad images to the same tile count (HF do_pad); when false every image must have the same count */
  readonly doPad: boolean;
  /** Caveats about how the settings were read (e.g. a fast processor's type name), one sentence each. */
  readonly notes: readonly string[];
}

/** Parse preprocessor_config.json of LlavaOnevisionImageProcessor / LlavaNextImageProcessor. */
export function parseAnyresImageConfig(raw: unknown, where = 'preprocessor_config.json'): AnyresImageConfig {
  const c = parseProcessorConfig(schema, raw, where);
  const kind = imageProcessorKind(c.image_processor_type ?? 'LlavaOnevisionImageProcessor', ['LlavaOnevisionImageProcessor', 'LlavaNextImageProcessor'], where);
  const type = kind.base;
  const isNext = type === 'LlavaNextImageProcessor';
  if (c.do_resize === false) throw new KvlensInputError('field "do_resize": false is not supported (tiles must be resized to one size)', where);
  const size = c.size ?? (isNext ? { shortest_edge: 224 } : { height: 384, width: 384 });
  let tileSize: number;
  if ('shortest_edge' in size) {
    tileSize = size.shortest_edge;
  } else {
    if (size.height !== size.width) throw new KvlensInputError(`field "size": non-square tiles ${size.height}x${size.width} are not supported`, where);
    tileSize = size.height;
  }
  const nextPinpoints: [number, number][] = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]];
  return {
    processorType: type,
    tileSize,
    pinpoints: c.image_grid_pinpoints ?? (isNext ? nextPinpoints : defaultOnevisionPinpoints()),
    resample: resampleFrom(c.resample, where),
    normalization: normalizationFrom(c, { mean: OPENAI_CLIP_MEAN, std: OPENAI_CLIP_STD }),
    doPad: c.do_pad ?? true,
    notes: kind.note ? [kind.note] : [],
  };
}

/** Model-side numbers the tiling needs besides the processor config (from config.json). */
export interface AnyresModelGeometry {
  /** vision_config.patch_size */
  readonly patchSize: number;
  /** N of vision_aspect_ratio anyres_max_N (LLaVA-OneVision); Infinity for LLaVA-NeXT (never downsamples) */
  readonly maxTiles: number;
}

export interface ProcessedAnyresImages {
  /** [nImages, maxTiles, 3, tileSize, tileSize] float32; tile 0 of each image is the base view */
  readonly pixelValues: Tensor<'float32'>;
  /** [nImages, 2] int64 original (height, width) */
  readonly imageSizes: Tensor<'int64'>;
  /** real (unpadded) tile count per image: 1 + high-res tiles */
  readonly tilesPerImage: readonly number[];
  readonly layouts: readonly AnyresLayout[];
}

/** The uint8 tiles of one image in pixel_values order: base view, then the high-res tiles row-major. */
export function anyresTiles(img: RgbImage, layout: AnyresLayout, cfg: AnyresImageConfig): RgbImage[] {
  const t = cfg.tileSize;
  const base = resizeRgb(img, t, t, cfg.resample);
  const resized = resizeRgb(img, layout.resized.width, layout.resized.height, cfg.resample);
  const p = layout.padding;
  const canvas = padImage(resized, p.top, p.bottom, p.left, p.right);
  const tiles = [base];
  for (const tile of layout.tiles) {
    let piece = cropImage(canvas, tile.x0, tile.y0, tile.x1, tile.y1);
    // _preprocess resizes every tile to the tile size; PIL returns a copy when the size already matches.
    if (piece.width !== t || piece.height !== t) {
      piece = cfg.processorType.startsWith('LlavaNext') ? shortestEdgeThenCrop(piece, t, cfg.resample) : resizeRgb(piece, t, t, cfg.resample);
    }
    tiles.push(piece);
  }
  return tiles;
}

/**
 * LlavaNextImageProcessor._preprocess on a tile cut short by odd padding (transformers 4.46): resize so the SHORT
 * side becomes `t` keeping the aspect (long side int(t * long / short), get_resize_output_image_size with
 * default_to_square=False), then centre-crop t x t (top = (h - t) // 2, left = (w - t) // 2).
 */
export function shortestEdgeThenCrop(img: RgbImage, t: number, resample: ResampleFilter): RgbImage {
  const { width: w, height: h } = img;
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.trunc((t * long) / short);
  const [nh, nw] = w <= h ? [newLong, t] : [t, newLong];
  const resized = resizeRgb(img, nw, nh, resample);
  const top = Math.floor((nh - t) / 2);
  const left = Math.floor((nw - t) / 2);
  return cropImage(resized, left, top, left + t, top + t);
}

export function imageSize(img: RgbImage): Size {
  return { height: img.height, width: img.width };
}

/** Process a batch of images as the HF processor does (one call = one `images=[...]` list). */
export function processAnyresImages(images: readonly RgbImage[], cfg: AnyresImageConfig, geom: AnyresModelGeometry): ProcessedAnyresImages {
  if (images.length === 0) throw new KvlensInputError('no images to process');
  const t = cfg.tileSize;
  const opts = { pinpoints: cfg.pinpoints, tileSize: t, patchSize: geom.patchSize, maxTiles: geom.maxTiles };
  const layouts = images.map((img) => anyresLayout(imageSize(img), opts));
  const tilesPerImage = layouts.map((l) => 1 + l.tiles.length);
  const maxTiles = Math.max(...tilesPerImage);
  if (!cfg.doPad && tilesPerImage.some((n) => n !== maxTiles)) {
    throw new KvlensInputError(`do_pad is false but the images have different tile counts (${tilesPerImage.join(', ')})`);
  }
  const tileLen = 3 * t * t;
  const data = new Float32Array(images.length * maxTiles * tileLen); // padded tiles stay 0 (_pad_for_batching)
  const tables = normalizationTable(cfg.normalization);
  images.forEach((img, i) => {
    anyresTiles(img, layouts[i], cfg).forEach((tile, k) => writeChw(tile, tables, data, (i * maxTiles + k) * tileLen));
  });
  const sizes = new BigInt64Array(images.length * 2);
  images.forEach((img, i) => {
    sizes[2 * i] = BigInt(img.height);
    sizes[2 * i + 1] = BigInt(img.width);
  });
  return {
    pixelValues: tensor('float32', [images.length, maxTiles, 3, t, t], data),
    imageSizes: tensor('int64', [images.length, 2], sizes),
    tilesPerImage,
    layouts,
  };
}
