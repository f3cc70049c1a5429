// From per-tile projector outputs to the packed image features LLaVA-OneVision scatters into the prompt:
// which tiles of a padded multi-image batch are real (image_size_to_num_patches), each image's anyres geometry
// (from src/preprocess/anyres.ts), and pack_image_features over all images in prompt order.

import { anyresLayout, selectBestResolution, type Size } from '../../preprocess/anyres.js';
import { tensor, type Tensor } from '../../tensor/tensor.js';
import { KvlensInputError } from '../../util/errors.js';
import type { LlavaOnevisionConfig } from './config.js';
import { packImage, type PackGeometry } from './pack.js';

/** HF image_size_to_num_patches: tiles covering the chosen pinpoint (ceil per axis) + the base tile. */
export function tilesForImage(size: Size, cfg: LlavaOnevisionConfig): number {
  const best = selectBestResolution(size, cfg.pinpoints);
  const t = cfg.vision.image_size;
  return Math.ceil(best.height / t) * Math.ceil(best.width / t) + 1;
}

/** The geometry pack_image_features applies to one image's feature grid. */
export function packGeometry(size: Size, cfg: LlavaOnevisionConfig): PackGeometry {
  const layout = anyresLayout(size, {
    pinpoints: cfg.pinpoints, tileSize: cfg.vision.image_size, patchSize: cfg.vision.patch_size, maxTiles: cfg.anyresMaxTiles,
  });
  const u = layout.unpad;
  return {
    gridRows: layout.tileGrid.height,
    gridCols: layout.tileGrid.width,
    rowStart: u.top,
    rowEnd: u.top + u.rows,
    colStart: u.left,
    colEnd: u.left + u.cols,
    resizeTo: layout.downsample.downsampled ? { rows: layout.downsample.rows, cols: layout.downsample.cols } : undefined,
  };
}

/** Image sizes from an int64 [nImages, 2] (height, width) tensor's data. */
export function imageSizesFrom(data: BigInt64Array | readonly number[], where = 'image_sizes'): Size[] {
  const v = Array.from(data as ArrayLike<number | bigint>, Number);
  if (v.length % 2) throw new KvlensInputError(`expected (height, width) pairs, got ${v.length} values`, where);
  const out: Size[] = [];
  for (let i = 0; i < v.length; i += 2) {
    if (!(v[i] > 0 && v[i + 1] > 0)) throw new KvlensInputError(`image ${i / 2} has size ${v[i]}x${v[i + 1]}`, where);
    out.push({ height: v[i], width: v[i + 1] });
  }
  return out;
}

export interface PackedFeatures {
  /** [imageToken, dModel] for all images, in order */
  readonly data: Float32Array;
  /** tokens per image */
  readonly lengths: number[];
}

/**
 * `tiles` holds the projector output of the REAL tiles of every image back to back: [sum(tilesPerImage), side^2, dModel].
 */
export function packAllImages(tiles: Float32Array, tilesPerImage: readonly number[], sizes: readonly Size[], cfg: LlavaOnevisionConfig, dModel: number, newline: Float32Array): PackedFeatures {
  const side = Math.floor(cfg.vision.image_size / cfg.vision.patch_size);
  const tokens = side * side;
  const perTile = tokens * dModel;
  const parts: Float32Array[] = [];
  let t0 = 0;
  tilesPerImage.forEach((n, i) => {
    const slice = tiles.subarray(t0 * perTile, (t0 + n) * perTile);
    parts.push(packImage(slice, n, side, dModel, newline, n > 1 ? packGeometry(sizes[i], cfg) : undefined));
    t0 += n;
  });
  const total = parts.reduce((a, p) => a + p.length, 0);
  const data = new Float32Array(total);
  let o = 0;
  for (const p of parts) { data.set(p, o); o += p.length; }
  return { data, lengths: parts.map((p) => p.length / dModel) };
}

/** Keep each image's first tilesPerImage[i] tiles of a padded [nImages, maxTiles, C, S, S] batch. */
export function realTiles(pixel: Tensor, tilesPerImage: readonly number[]): Tensor {
  const s = pixel.shape;
  if (pixel.dtype !== 'float32') throw new KvlensInputError(`expected float32, got ${pixel.dtype}`, 'pixel_values');
  const total = tilesPerImage.reduce((a, b) => a + b, 0);
  if (s.length === 4) {
    if (s[0] !== total) throw new KvlensInputError(`${s[0]} tiles given, image_sizes imply ${total} (${tilesPerImage.join(' + ')})`, 'pixel_values');
    return pixel;
  }
  if (s.length !== 5) throw new KvlensInputError(`expected [images, tiles, C, S, S] or [tiles, C, S, S], got [${s.join(', ')}]`, 'pixel_values');
  if (s[0] !== tilesPerImage.length) throw new KvlensInputError(`${s[0]} images in pixel_values but ${tilesPerImage.length} image sizes`, 'pixel_values');
  const per = s[2] * s[3] * s[4];
  const out = new Float32Array(total * per);
  let o = 0;
  tilesPerImage.forEach((n, i) => {
    if (n > s[1]) throw new KvlensInputError(`image ${i} needs ${n} tiles for its size but pixel_values holds ${s[1]} per image`, 'pixel_values');
    out.set((pixel.data as Float32Array).subarray(i * s[1] * per, (i * s[1] + n) * per), o);
    o += n * per;
  });
  return tensor('float32', [total, s[2], s[3], s[4]], out);
}
