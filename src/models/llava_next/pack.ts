// LLaVA-NeXT's pack_image_features: base tile tokens, then the grid tiles re-assembled, unpadded to the image's
// content, with image_newline after every row. Unlike LLaVA-OneVision there is NO anyres_max downsampling.
// The feature mover is LLaVA-OneVision's packImage; the geometry comes from src/preprocess/anyres.ts.

import { selectBestResolution, unpadWindow, type Size } from '../../preprocess/anyres.js';
import { packImage, type PackGeometry } from '../llava_onevision/pack.js';
import type { LlavaNextConfig } from './config.js';

/** HF image_size_to_num_patches: grid tiles of the chosen pinpoint (ceil per axis) + the base tile. */
export function llavaNextTilesForImage(size: Size, cfg: LlavaNextConfig): number {
  const best = selectBestResolution(size, cfg.pinpoints);
  const t = cfg.vision.image_size;
  return Math.ceil(best.height / t) * Math.ceil(best.width / t) + 1;
}

/** Grid shape (get_anyres_image_grid_shape) and unpad window of one image, in patches. */
export function llavaNextGeometry(size: Size, cfg: LlavaNextConfig): PackGeometry {
  const best = selectBestResolution(size, cfg.pinpoints);
  const t = cfg.vision.image_size;
  const side = Math.floor(t / cfg.vision.patch_size);
  const gridRows = Math.floor(best.height / t);
  const gridCols = Math.floor(best.width / t);
  const u = unpadWindow(size, { height: gridRows * side, width: gridCols * side });
  return { gridRows, gridCols, rowStart: u.top, rowEnd: u.top + u.rows, colStart: u.left, colEnd: u.left + u.cols };
}

/** Image tokens one image occupies in the prompt (what the processor expands <image> to). */
export function llavaNextTokenCount(size: Size, cfg: LlavaNextConfig): number {
  const side = Math.floor(cfg.vision.image_size / cfg.vision.patch_size);
  const g = llavaNextGeometry(size, cfg);
  const rows = g.rowEnd - g.rowStart;
  const cols = g.colEnd - g.colStart;
  return side * side + rows * (cols + 1);
}

/**
 * `tiles`: projector outputs of the real tiles of every image back to back [sum(tilesPerImage), side^2, dModel].
 * Returns [imageToken, dModel] for all images in order and the token count per image.
 */
export function packLlavaNext(tiles: Float32Array, tilesPerImage: readonly number[], sizes: readonly Size[], cfg: LlavaNextConfig, dModel: number, newline: Float32Array): { data: Float32Array; lengths: number[] } {
  const side = Math.floor(cfg.vision.image_size / cfg.vision.patch_size);
  const perTile = side * side * dModel;
  const parts: Float32Array[] = [];
  let t0 = 0;
  tilesPerImage.forEach((n, i) => {
    const slice = tiles.subarray(t0 * perTile, (t0 + n) * perTile);
    parts.push(packImage(slice, n, side, dModel, newline, n > 1 ? llavaNextGeometry(sizes[i], cfg) : undefined));
    t0 += n;
  });
  const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { data.set(p, o); o += p.length; }
  return { data, lengths: parts.map((p) => p.length / dModel) };
}
