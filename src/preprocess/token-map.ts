// From every position of a prompt back to the image: text or image token; for image tokens which image, which
// view (base tile, high-resolution grid, or row newline), the row/col in that view's grid (after unpad and
// anyres_max downsample), and the box of ORIGINAL-image pixels the token stands for.
//
// Boxes are continuous pixel coordinates [x0, x1) x [y0, y1) in the original image (floats; clamped to it):
// - base view: the tile is the whole image squashed to tileSize^2, so patch (r, c) covers tile pixels
//   [c*p, (c+1)*p) which scale by W/tileSize (H/tileSize) back to the original;
// - high-res grid: final cell -> its footprint in the unpadded grid (downsampling by s = in/out maps cell i to
//   [i*s, (i+1)*s), the span whose centre torch's bilinear sample point sits on) -> full patch grid (+ unpad
//   offset) -> tile pixels -> canvas pixels (a short edge tile was stretched to tileSize, so it maps back with its
//   real length) -> minus the padding -> times original/resized. Cells lying in padding get empty boxes.
// Pixels a conv patch grid never sees (384 px tile, 14 px patches: the last 6 px) are in no box.

import type { AnyresLayout } from './anyres.js';
import type { ImageRun } from '../tokenizer/prompt.js';
import { KvlensInputError } from '../util/errors.js';

export type TokenView = 'base' | 'highres' | 'newline';

/** Continuous original-pixel box [x0, x1) x [y0, y1). */
export interface PixelBox {
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

export interface ImageTokenInfo {
  readonly image: number;
  readonly view: TokenView;
  /** row in the view's grid (newline: the row it ends) */
  readonly row: number;
  /** column in the view's grid (newline: == cols of the high-res grid) */
  readonly col: number;
  /** original pixels covered; null for newline tokens */
  readonly box: PixelBox | null;
}

/** Whether the box overlaps pixel (px, py), i.e. the unit square [px, px+1) x [py, py+1). */
export function boxTouchesPixel(b: PixelBox, px: number, py: number): boolean {
  return b.x0 < px + 1 && px < b.x1 && b.y0 < py + 1 && py < b.y1;
}

interface Axis {
  readonly tileSize: number;
  readonly patchSize: number;
  readonly patchesPerTile: number;
  readonly tiles: number;
  readonly canvasLen: number;
  readonly padBefore: number;
  readonly resizedLen: number;
  readonly originalLen: number;
}

function axes(layout: AnyresLayout, patchSize: number): { y: Axis; x: Axis } {
  const tileSize = layout.bestResolution.height / layout.tileGrid.height;
  const common = { tileSize, patchSize, patchesPerTile: layout.patchesPerSide };
  return {
    y: { ...common, tiles: layout.tileGrid.height, canvasLen: layout.padding.canvas.height, padBefore: layout.padding.top, resizedLen: layout.resized.height, originalLen: layout.original.height },
    x: { ...common, tiles: layout.tileGrid.width, canvasLen: layout.padding.canvas.width, padBefore: layout.padding.left, resizedLen: layout.resized.width, originalLen: layout.original.width },
  };
}

/** Full-grid coordinate g (in patches) -> original pixel coordinate; `isEnd` picks the tile ending at g on a seam. */
function gridToOriginal(g: number, a: Axis, isEnd: boolean): number {
  let tile = isEnd ? Math.ceil(g / a.patchesPerTile) - 1 : Math.floor(g / a.patchesPerTile);
  tile = Math.min(Math.max(tile, 0), a.tiles - 1);
  const local = g - tile * a.patchesPerTile; // patches into the tile
  const tileStart = tile * a.tileSize;
  const tileLen = Math.max(Math.min(a.tileSize, a.canvasLen - tileStart), 0);
  const canvas = tileStart + (local * a.patchSize * tileLen) / a.tileSize;
  const orig = ((canvas - a.padBefore) * a.originalLen) / a.resizedLen;
  return Math.min(Math.max(orig, 0), a.originalLen);
}

/** Box of the final high-res cell (row, col). */
export function highresCellBox(layout: AnyresLayout, patchSize: number, row: number, col: number): PixelBox {
  const { y, x } = axes(layout, patchSize);
  const sy = layout.unpad.rows / layout.finalGrid.height;
  const sx = layout.unpad.cols / layout.finalGrid.width;
  const gy0 = layout.unpad.top + row * sy;
  const gy1 = layout.unpad.top + (row + 1) * sy;
  const gx0 = layout.unpad.left + col * sx;
  const gx1 = layout.unpad.left + (col + 1) * sx;
  return { x0: gridToOriginal(gx0, x, false), x1: gridToOriginal(gx1, x, true), y0: gridToOriginal(gy0, y, false), y1: gridToOriginal(gy1, y, true) };
}

/** Box of base-view patch (row, col): the tile is the whole image squashed to tileSize x tileSize. */
export function baseCellBox(layout: AnyresLayout, patchSize: number, tileSize: number, row: number, col: number): PixelBox {
  const W = layout.original.width;
  const H = layout.original.height;
  const clampTo = (v: number, hi: number) => Math.min(v, hi);
  return {
    x0: (col * patchSize * W) / tileSize, x1: clampTo(((col + 1) * patchSize * W) / tileSize, W),
    y0: (row * patchSize * H) / tileSize, y1: clampTo(((row + 1) * patchSize * H) / tileSize, H),
  };
}

/** The token infos of one image in sequence order: base tokens row-major, then grid rows each ending in a newline. */
export function imageTokenInfos(image: number, layout: AnyresLayout, patchSize: number): ImageTokenInfo[] {
  const pps = layout.patchesPerSide;
  const tileSize = layout.bestResolution.height / layout.tileGrid.height;
  const out: ImageTokenInfo[] = [];
  for (let r = 0; r < pps; r++) {
    for (let c = 0; c < pps; c++) out.push({ image, view: 'base', row: r, col: c, box: baseCellBox(layout, patchSize, tileSize, r, c) });
  }
  const { height: rows, width: cols } = layout.finalGrid;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out.push({ image, view: 'highres', row: r, col: c, box: highresCellBox(layout, patchSize, r, c) });
    out.push({ image, view: 'newline', row: r, col: cols, box: null });
  }
  return out;
}

export interface TokenMap {
  readonly length: number;
  /** per position: null for text, else the image token's info */
  readonly entries: readonly (ImageTokenInfo | null)[];
  /** positions [start, end) of each image's tokens */
  readonly runs: readonly ImageRun[];
}

/** Assemble the map of a prompt of `length` positions whose image runs are `runs`. */
export function buildTokenMap(length: number, runs: readonly ImageRun[], layouts: readonly AnyresLayout[], patchSize: number): TokenMap {
  const entries: (ImageTokenInfo | null)[] = new Array(length).fill(null);
  for (const run of runs) {
    const infos = imageTokenInfos(run.image, layouts[run.image], patchSize);
    if (infos.length !== run.end - run.start) {
      throw new Error(`token map: image ${run.image} has ${run.end - run.start} tokens in the prompt but its layout gives ${infos.length}`);
    }
    infos.forEach((info, k) => { entries[run.start + k] = info; });
  }
  return { length, entries, runs };
}

/** A [rows, cols, dim] float32 grid. */
export interface FeatureGrid {
  readonly rows: number;
  readonly cols: number;
  readonly dim: number;
  readonly data: Float32Array;
}

/**
 * Split one image's per-token vectors [nImageTokens, dim] (sequence order) into the base grid [pps, pps, dim] and the
 * high-res grid [rows, cols, dim], dropping the newline tokens.
 */
export function imageTokenGrids(vectors: Float32Array, dim: number, layout: AnyresLayout): { base: FeatureGrid; highres: FeatureGrid } {
  const pps = layout.patchesPerSide;
  const { height: rows, width: cols } = layout.finalGrid;
  const nTokens = pps * pps + rows * (cols + 1);
  if (vectors.length !== nTokens * dim) {
    throw new Error(`imageTokenGrids: got ${vectors.length} values, expected ${nTokens} tokens x ${dim}`);
  }
  const base = vectors.slice(0, pps * pps * dim);
  const grid = new Float32Array(rows * cols * dim);
  for (let r = 0; r < rows; r++) {
    const src = (pps * pps + r * (cols + 1)) * dim;
    grid.set(vectors.subarray(src, src + cols * dim), r * cols * dim);
  }
  return { base: { rows: pps, cols: pps, dim, data: base }, highres: { rows, cols, dim, data: grid } };
}

/**
 * Qwen2-VL / Qwen2.5-VL: one token per merge x merge block of patches, in raster order over the merged grid
 * (rows x cols = resized H / (patch*merge) x resized W / (patch*merge)), no newline tokens. smart_resize is a plain
 * resize (no padding, no crop), so merged cell (r, c) covers resized pixels [c*u, (c+1)*u) x [r*u, (r+1)*u) with
 * u = patch*merge, i.e. those times original/resized in the original image. The view is named "highres": the grid
 * is the image at (near) native resolution, like the anyres families' high-resolution grid; there is no "base" view.
 */
export interface MergedGridLayout {
  readonly original: { readonly height: number; readonly width: number };
  readonly resized: { readonly height: number; readonly width: number };
  /** pixels per merged token side (patch_size * merge_size, 28 for the released checkpoints) */
  readonly unit: number;
}

export const QWEN2VL_VIEW: TokenView = 'highres';

export function mergedGridTokenInfos(image: number, layout: MergedGridLayout): ImageTokenInfo[] {
  const rows = layout.resized.height / layout.unit;
  const cols = layout.resized.width / layout.unit;
  if (!Number.isInteger(rows) || !Number.isInteger(cols)) {
    throw new Error(`token map: resized image ${layout.resized.height}x${layout.resized.width} is not a multiple of ${layout.unit} px`);
  }
  const sy = layout.original.height / layout.resized.height;
  const sx = layout.original.width / layout.resized.width;
  const out: ImageTokenInfo[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const box = {
        x0: c * layout.unit * sx, x1: Math.min((c + 1) * layout.unit * sx, layout.original.width),
        y0: r * layout.unit * sy, y1: Math.min((r + 1) * layout.unit * sy, layout.original.height),
      };
      out.push({ image, view: QWEN2VL_VIEW, row: r, col: c, box });
    }
  }
  return out;
}

/** Assemble a token map from each image's token infos (sequence order), checking them against the prompt's runs. */
export function tokenMapFromInfos(length: number, runs: readonly ImageRun[], infosPerImage: readonly (readonly ImageTokenInfo[])[]): TokenMap {
  const entries: (ImageTokenInfo | null)[] = new Array(length).fill(null);
  for (const run of runs) {
    const infos = infosPerImage[run.image];
    if (infos.length !== run.end - run.start) {
      throw new Error(`token map: image ${run.image} has ${run.end - run.start} tokens in the prompt but its layout gives ${infos.length}`);
    }
    infos.forEach((info, k) => { entries[run.start + k] = info; });
  }
  return { length, entries, runs };
}

/** Where a view's tokens sit: `positions[r * cols + c]` is the position of grid cell (r, c) (raster order). */
export interface ViewTokens {
  readonly rows: number;
  readonly cols: number;
  readonly positions: ArrayLike<number>;
  /**
   * The fraction of the image (x: width, y: height) the grid's tokens read, from their pixel boxes: 378/384 for a
   * 27 x 14-px grid on a 384-px tile; absent = the whole image (probes/grid.ts GridExtent).
   */
  readonly extent?: { readonly x: number; readonly y: number };
}

/**
 * The pixel extent of image `image`'s `view` grid: the right / bottom edge the view's token boxes reach, as a fraction
 * of the image's width / height (`size`: the image as given to the processor). A uniform-grid summary: exact for a
 * single tile (base view, one-tile high-res grids, Qwen's merged grid); with several anyres tiles the seams' uncovered
 * strips inside the image are not modelled, only the last tile's. Undefined when the view has no boxes.
 */
export function viewExtent(map: Pick<TokenMap, 'entries' | 'runs'>, view: string, size: { readonly width: number; readonly height: number }, image = 0): { x: number; y: number } | undefined {
  const run = map.runs.find((r) => r.image === image);
  if (!run) return undefined;
  let x1 = 0;
  let y1 = 0;
  let n = 0;
  for (let pos = run.start; pos < run.end; pos++) {
    const e = map.entries[pos];
    if (!e || e.view !== view || !e.box) continue;
    n++;
    if (e.box.x1 > x1) x1 = e.box.x1;
    if (e.box.y1 > y1) y1 = e.box.y1;
  }
  if (n === 0 || !(size.width > 0 && size.height > 0) || x1 <= 0 || y1 <= 0) return undefined;
  return { x: Math.min(1, x1 / size.width), y: Math.min(1, y1 / size.height) };
}

/**
 * THE token-map-to-grid function: image `image`'s tokens of `view` as a grid in raster order (newlines excluded), or
 * undefined when that image has no such view. Throws (naming the image and view) when the tokens do not fill a grid.
 */
export function viewGrid(map: Pick<TokenMap, 'entries' | 'runs'>, view: string, image = 0): ViewTokens | undefined {
  const run = map.runs.find((r) => r.image === image);
  if (!run) throw new KvlensInputError(`the prompt has no image ${image} (it has ${map.runs.length})`, 'token map');
  let rows = 0;
  let cols = 0;
  let n = 0;
  for (let pos = run.start; pos < run.end; pos++) {
    const e = map.entries[pos];
    if (!e || e.view !== view) continue;
    n++;
    if (e.row + 1 > rows) rows = e.row + 1;
    if (e.col + 1 > cols) cols = e.col + 1;
  }
  if (n === 0) return undefined;
  if (n !== rows * cols) throw new KvlensInputError(`image ${image}: ${n} "${view}" tokens do not fill a ${rows} x ${cols} grid`, 'token map');
  const positions = new Array<number>(n).fill(-1);
  for (let pos = run.start; pos < run.end; pos++) {
    const e = map.entries[pos];
    if (e && e.view === view) positions[e.row * cols + e.col] = pos;
  }
  if (positions.includes(-1)) throw new KvlensInputError(`image ${image}: "${view}" tokens repeat a grid cell`, 'token map');
  return { rows, cols, positions };
}

/** viewGrid for every image of the prompt, in image order; throws when one has no such view. */
export function viewGrids(map: Pick<TokenMap, 'entries' | 'runs'>, view: string): ViewTokens[] {
  return map.runs.map((run) => {
    const g = viewGrid(map, view, run.image);
    if (!g) throw new KvlensInputError(`image ${run.image} of the prompt has no "${view}" tokens`, 'token map');
    return g;
  });
}

/** The views of image `image` among `wanted` that its tokens have (views it lacks are left out). */
export function imageViewGrids(map: Pick<TokenMap, 'entries' | 'runs'>, wanted: readonly string[], image = 0): Record<string, ViewTokens> {
  const out: Record<string, ViewTokens> = {};
  for (const v of wanted) {
    const g = viewGrid(map, v, image);
    if (g) out[v] = g;
  }
  return out;
}
