// Probe inputs: feature grids and label maps, plus the grid <-> pixel conventions every probe shares.
//
// Convention: a token grid of rows x cols tiles the label map / image frame it is paired with uniformly
// (the squash-resize case: LLaVA base grid, a fixed-resolution resize), starting at the top-left corner and covering the
// fraction `extent` of the frame (default 1 = all of it). A ViT's patch grid covers only the pixels its patches read:
// SigLIP at 384 px with 14-px patches covers 27*14 = 378 of 384 px (extent 378/384 on both axes), CLIP at 336 px exactly
// 24*14 = 336 (extent 1). With ex = extent.x, ey = extent.y, token (r, c) covers the continuous box
// [c*ex*W/cols, (c+1)*ex*W/cols) x [r*ey*H/rows, (r+1)*ey*H/rows); pixel (x, y) has centre (x+0.5, y+0.5). Pixels past
// the covered part belong to the last row / column (edge clamp: no token saw them).
// For letterboxed / anyres inputs the caller first maps masks into the frame the grid tiles.

import { KvlensInputError } from '../util/errors.js';

/** Fraction of the frame's width (x) and height (y) a token grid covers from the top-left corner, in (0, 1]. */
export interface GridExtent {
  readonly x: number;
  readonly y: number;
}

/** Token features, row-major [rows, cols, dim]. */
export interface FeatureGrid {
  readonly rows: number;
  readonly cols: number;
  readonly dim: number;
  readonly data: Float32Array;
  /** Covered fraction of the frame (default: all of it). */
  readonly extent?: GridExtent;
}

/** The extent of a ViT patch grid: `tokens` patches of `patch` px along an axis of a `tile`-px input. */
export function patchGridExtent(tokens: number, patch: number, tile: number): number {
  if (!(tokens > 0 && patch > 0 && tile > 0) || tokens * patch > tile) throw new KvlensInputError(`${tokens} patches of ${patch} px do not fit a ${tile}-px tile`, 'grid extent');
  return (tokens * patch) / tile;
}

const ex = (e: GridExtent | undefined): number => e?.x ?? 1;
const ey = (e: GridExtent | undefined): number => e?.y ?? 1;

/** A label map, row-major [height, width]. */
export interface LabelMap {
  readonly height: number;
  readonly width: number;
  readonly data: Uint8Array | Uint16Array;
}

/** A per-token scalar map, row-major [rows, cols]. */
export interface ScoreGrid {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
  readonly extent?: GridExtent;
}

export function checkGrid(g: FeatureGrid, where: string): void {
  if (!(g.rows > 0 && g.cols > 0 && g.dim > 0) || g.data.length !== g.rows * g.cols * g.dim) {
    throw new KvlensInputError(`feature grid must be [rows, cols, dim] with rows*cols*dim values; got rows=${g.rows} cols=${g.cols} dim=${g.dim} and ${g.data.length} values`, where);
  }
  if (g.extent && !(g.extent.x > 0 && g.extent.x <= 1 && g.extent.y > 0 && g.extent.y <= 1)) {
    throw new KvlensInputError(`feature grid extent must be in (0, 1] on both axes; got x=${g.extent.x} y=${g.extent.y}`, where);
  }
}

export function checkLabelMap(m: LabelMap, where: string): void {
  if (!(m.height > 0 && m.width > 0) || m.data.length !== m.height * m.width) {
    throw new KvlensInputError(`label map must be [height, width]; got ${m.height}x${m.width} with ${m.data.length} values`, where);
  }
}

/**
 * Bilinear resize of a score grid to [height, width] with half-pixel centres and edge clamping
 * (PyTorch interpolate(mode='bilinear', align_corners=False)).
 */
export function upsampleBilinear(src: ScoreGrid, height: number, width: number): Float32Array {
  const out = new Float32Array(height * width);
  const sy = src.rows / (ey(src.extent) * height);
  const sx = src.cols / (ex(src.extent) * width);
  const x0s = new Int32Array(width);
  const x1s = new Int32Array(width);
  const fxs = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const fx = Math.max(0, (x + 0.5) * sx - 0.5);
    const x0 = Math.min(Math.floor(fx), src.cols - 1);
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, src.cols - 1);
    fxs[x] = fx - x0;
  }
  for (let y = 0; y < height; y++) {
    const fy = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(Math.floor(fy), src.rows - 1);
    const y1 = Math.min(y0 + 1, src.rows - 1);
    const wy = fy - y0;
    const r0 = y0 * src.cols;
    const r1 = y1 * src.cols;
    for (let x = 0; x < width; x++) {
      const a = src.data[r0 + x0s[x]] * (1 - fxs[x]) + src.data[r0 + x1s[x]] * fxs[x];
      const b = src.data[r1 + x0s[x]] * (1 - fxs[x]) + src.data[r1 + x1s[x]] * fxs[x];
      out[y * width + x] = a * (1 - wy) + b * wy;
    }
  }
  return out;
}

/** Nearest resize of per-token labels [rows, cols] to [height, width]: each pixel takes its token's label. */
export function upsampleNearest(labels: ArrayLike<number>, rows: number, cols: number, height: number, width: number, extent?: GridExtent): Uint8Array {
  const out = new Uint8Array(height * width);
  for (let y = 0; y < height; y++) {
    const r = Math.min(rows - 1, Math.floor(((y + 0.5) * rows) / (ey(extent) * height)));
    for (let x = 0; x < width; x++) {
      const c = Math.min(cols - 1, Math.floor(((x + 0.5) * cols) / (ex(extent) * width)));
      out[y * width + x] = labels[r * cols + c];
    }
  }
  return out;
}

/** Sample a label map at each token's centre (nearest; PIL NEAREST resize to rows x cols). [rows*cols] */
export function labelsAtTokenCentres(map: LabelMap, rows: number, cols: number, extent?: GridExtent): Uint16Array {
  const out = new Uint16Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const y = Math.min(map.height - 1, Math.floor(((r + 0.5) * ey(extent) * map.height) / rows));
    for (let c = 0; c < cols; c++) {
      const x = Math.min(map.width - 1, Math.floor(((c + 0.5) * ex(extent) * map.width) / cols));
      out[r * cols + c] = map.data[y * map.width + x];
    }
  }
  return out;
}

/**
 * Pixel index range [start, end) of token i of n along an axis of `length` pixels, `fraction` of which the grid covers.
 * The last token also takes the uncovered pixels past the grid (the same edge clamp as the upsampling).
 */
export function tokenSpan(i: number, n: number, length: number, fraction = 1): [number, number] {
  const covered = fraction * length;
  const start = Math.min(length - 1, Math.floor((i * covered) / n));
  const end = i === n - 1 ? length : Math.max(start + 1, Math.floor(((i + 1) * covered) / n));
  return [start, Math.min(end, length)];
}

export const TOKEN_IGNORE = 255;

export interface TokenLabelRule {
  /** A token is foreground iff fg pixels / (fg + bg pixels) in its box exceeds this. */
  readonly fgFraction: number;
  /** A token is ignored iff ignore pixels / all pixels in its box exceeds this. */
  readonly ignoreFraction: number;
}

export const DEFAULT_TOKEN_LABEL_RULE: TokenLabelRule = { fgFraction: 0.5, ignoreFraction: 0.5 };

/**
 * Binary token labels from a pixel label map: area fractions inside each token's box.
 * isFg / isIgnore classify a pixel value. Returns 1 (fg), 0 (bg) or TOKEN_IGNORE per token. [rows*cols]
 */
export function tokenLabelsByArea(map: LabelMap, rows: number, cols: number, isFg: (v: number) => boolean, isIgnore: (v: number) => boolean, rule: TokenLabelRule = DEFAULT_TOKEN_LABEL_RULE, extent?: GridExtent): Uint8Array {
  const out = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const [y0, y1] = tokenSpan(r, rows, map.height, ey(extent));
    for (let c = 0; c < cols; c++) {
      const [x0, x1] = tokenSpan(c, cols, map.width, ex(extent));
      let fg = 0; let bg = 0; let ig = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const v = map.data[y * map.width + x];
          if (isIgnore(v)) ig++; else if (isFg(v)) fg++; else bg++;
        }
      }
      const total = fg + bg + ig;
      out[r * cols + c] = ig / total > rule.ignoreFraction || fg + bg === 0 ? TOKEN_IGNORE : fg / (fg + bg) > rule.fgFraction ? 1 : 0;
    }
  }
  return out;
}

/** The token containing the continuous image point (x, y) of an image of size width x height. */
export function tokenOfPoint(x: number, y: number, width: number, height: number, rows: number, cols: number, extent?: GridExtent): { row: number; col: number } {
  const col = Math.min(cols - 1, Math.max(0, Math.floor((x * cols) / (ex(extent) * width))));
  const row = Math.min(rows - 1, Math.max(0, Math.floor((y * rows) / (ey(extent) * height))));
  return { row, col };
}

/** Centre of token (row, col)'s pixel box in continuous image coordinates. */
export function tokenCentre(row: number, col: number, width: number, height: number, rows: number, cols: number, extent?: GridExtent): { x: number; y: number } {
  return { x: ((col + 0.5) * ex(extent) * width) / cols, y: ((row + 0.5) * ey(extent) * height) / rows };
}

/**
 * Multi-class token labels: the majority class among a token's non-ignored pixels (ties: the lower class id), or
 * TOKEN_IGNORE when more than `ignoreFraction` of its pixels are `ignore` or a value outside [0, numClasses). [rows*cols]
 */
export function tokenMajorityLabels(map: LabelMap, grid: { rows: number; cols: number; extent?: GridExtent }, numClasses: number, ignore: number, ignoreFraction: number): Uint8Array {
  const { rows, cols, extent } = grid;
  const out = new Uint8Array(rows * cols);
  const counts = new Int32Array(numClasses);
  for (let r = 0; r < rows; r++) {
    const [y0, y1] = tokenSpan(r, rows, map.height, ey(extent));
    for (let c = 0; c < cols; c++) {
      const [x0, x1] = tokenSpan(c, cols, map.width, ex(extent));
      counts.fill(0);
      let ig = 0; let total = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const v = map.data[y * map.width + x];
          total++;
          if (v === ignore || v >= numClasses) ig++; else counts[v]++;
        }
      }
      let best = -1; let bestN = 0;
      for (let k = 0; k < numClasses; k++) if (counts[k] > bestN) { bestN = counts[k]; best = k; }
      out[r * cols + c] = best < 0 || ig / total > ignoreFraction ? TOKEN_IGNORE : best;
    }
  }
  return out;
}

/** Feature vector of token t (a view, no copy). */
export function tokenVector(g: FeatureGrid, t: number): Float32Array {
  return g.data.subarray(t * g.dim, (t + 1) * g.dim);
}
