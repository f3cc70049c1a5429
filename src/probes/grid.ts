// Probe inputs: feature grids and label maps, plus the grid <-> pixel conventions every probe shares.
//
// Convention: a token grid of rows x cols tiles the label map / image frame it is paired with uniformly
// (the squash-resize case: LLaVA base grid, a fixed-resolution resize). Token (r, c) covers the
// continuous box [c*W/cols, (c+1)*W/cols) x [r*H/rows, (r+1)*H/rows); pixel (x, y) has centre (x+0.5, y+0.5).
// For letterboxed / anyres inputs the caller first maps masks into the frame the grid tiles.

import { KvlensInputError } from '../util/errors.js';

/** Token features, row-major [rows, cols, dim]. */
export interface FeatureGrid {
  readonly rows: number;
  readonly cols: number;
  readonly dim: number;
  readonly data: Float32Array;
}

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
}

export function checkGrid(g: FeatureGrid, where: string): void {
  if (!(g.rows > 0 && g.cols > 0 && g.dim > 0) || g.data.length !== g.rows * g.cols * g.dim) {
    throw new KvlensInputError(`feature grid must be [rows, cols, dim] with rows*cols*dim values; got rows=${g.rows} cols=${g.cols} dim=${g.dim} and ${g.data.length} values`, where);
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
  const sy = src.rows / height;
  const sx = src.cols / width;
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
export function upsampleNearest(labels: ArrayLike<number>, rows: number, cols: number, height: number, width: number): Uint8Array {
  const out = new Uint8Array(height * width);
  for (let y = 0; y < height; y++) {
    const r = Math.min(rows - 1, Math.floor(((y + 0.5) * rows) / height));
    for (let x = 0; x < width; x++) {
      const c = Math.min(cols - 1, Math.floor(((x + 0.5) * cols) / width));
      out[y * width + x] = labels[r * cols + c];
    }
  }
  return out;
}

/** Sample a label map at each token's centre (nearest; PIL NEAREST resize to rows x cols). [rows*cols] */
export function labelsAtTokenCentres(map: LabelMap, rows: number, cols: number): Uint16Array {
  const out = new Uint16Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const y = Math.min(map.height - 1, Math.floor(((r + 0.5) * map.height) / rows));
    for (let c = 0; c < cols; c++) {
      const x = Math.min(map.width - 1, Math.floor(((c + 0.5) * map.width) / cols));
      out[r * cols + c] = map.data[y * map.width + x];
    }
  }
  return out;
}

/** Pixel index range [start, end) covered by token index i of n along an axis of `length` pixels. */
function tokenSpan(i: number, n: number, length: number): [number, number] {
  const start = Math.floor((i * length) / n);
  const end = Math.max(start + 1, Math.floor(((i + 1) * length) / n));
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
export function tokenLabelsByArea(map: LabelMap, rows: number, cols: number, isFg: (v: number) => boolean, isIgnore: (v: number) => boolean, rule: TokenLabelRule = DEFAULT_TOKEN_LABEL_RULE): Uint8Array {
  const out = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const [y0, y1] = tokenSpan(r, rows, map.height);
    for (let c = 0; c < cols; c++) {
      const [x0, x1] = tokenSpan(c, cols, map.width);
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
export function tokenOfPoint(x: number, y: number, width: number, height: number, rows: number, cols: number): { row: number; col: number } {
  const col = Math.min(cols - 1, Math.max(0, Math.floor((x * cols) / width)));
  const row = Math.min(rows - 1, Math.max(0, Math.floor((y * rows) / height)));
  return { row, col };
}

/** Centre of token (row, col) in continuous image coordinates. */
export function tokenCentre(row: number, col: number, width: number, height: number, rows: number, cols: number): { x: number; y: number } {
  return { x: ((col + 0.5) * width) / cols, y: ((row + 0.5) * height) / rows };
}

/** Feature vector of token t (a view, no copy). */
export function tokenVector(g: FeatureGrid, t: number): Float32Array {
  return g.data.subarray(t * g.dim, (t + 1) * g.dim);
}
