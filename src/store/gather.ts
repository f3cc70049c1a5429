// From a tap's whole-sequence tensor to the image-token grids the store keeps: pick the image tokens of each view,
// in raster order, and lay them out as [rows, cols, D] with D = heads x headDim flattened head-major.
//
// Three tap families (each with the views it can hold, see tapViews):
//   sequence taps  lm.*                       [1, pos, D] / [1, kvHead, pos, dHead]: the view's sequence positions
//   packed         image.packed               [imageToken, D], row 0 at sequence position `origin`: same positions
//   tile taps      vision.*, projector.out    [tile, token, D]: tile 0 (LLaVA's base tile) in raster order, base view
//                  siglip.*                   [tile, token, D]: tile 0 of the baseline tower, its own "siglip" view
// Tile taps are gathered by cell index (token r*cols + c), not by sequence position: their grid is the tower's patch
// grid, which for the base view is exactly the base tile's token grid.

import { parseHook } from '../taps/names.js';
import { numel } from '../tensor/tensor.js';
import { KvlensUsageError } from '../util/errors.js';
import type { TapDims } from './format.js';

/** One captured tap for one image (batch 1), in the layout src/taps/names.ts documents for that name. */
export interface TapTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
  /** For [batch, pos, heads*headDim] taps (k_proj, v_proj, q_proj): how many heads D splits into (default 1). */
  readonly heads?: number;
  /** image.packed only: the sequence position of row 0 (the image's first token). */
  readonly origin?: number;
}

/** Where a view's image tokens sit in the sequence: `positions[r * cols + c]` is the position of grid cell (r, c). */
export interface ViewTokens {
  readonly rows: number;
  readonly cols: number;
  readonly positions: ArrayLike<number>;
}

/** Everything the store records about one image besides its tensors. */
export interface ImageRecord {
  /** Path (or URL) of the source image, as the extractor read it. */
  readonly source: string;
  readonly originalSize: { readonly width: number; readonly height: number };
  /** Token map per view ("base", "highres"): grid shape and sequence positions. */
  readonly views: Readonly<Record<string, ViewTokens>>;
  /** The image's own prefix text (stores extracted with per-image prefixes only). */
  readonly prefix?: string;
}

export interface TapLayout extends TapDims {
  /** Sequence length of the captured tensor. */
  readonly seqLen: number;
  /**
   * 'headMajor' = [1, heads, pos, headDim] (cached k/v); 'flat' = [1, pos, heads*headDim];
   * 'packed' = [imageToken, D] starting at sequence position `origin`; 'tiles' = [tile, token, D] (tile 0 is stored).
   */
  readonly kind: 'headMajor' | 'flat' | 'packed' | 'tiles';
  /** packed: sequence position of row 0 */
  readonly origin: number;
}

const HEAD_MAJOR = new Set(['lm.attn.k', 'lm.attn.v']);
const FLAT = new Set(['lm.embed', 'lm.resid', 'lm.final_norm', 'lm.attn.q_proj', 'lm.attn.k_proj', 'lm.attn.v_proj']);
const PACKED = new Set(['image.packed']);
const LLAVA_TILES = new Set(['vision.embed', 'vision.out', 'vision.post_norm', 'projector.out']);
const SIGLIP_TILES = new Set(['siglip.embed', 'siglip.out', 'siglip.post_norm']);

/** The view holding the un-finetuned SigLIP baseline's grid (its own patch grid, which may differ from LLaVA's). */
export const SIGLIP_VIEW = 'siglip';

/**
 * Taps the store can hold: per-position language-model taps, the packed image features, and the per-tile vision
 * taps (LLaVA's tower and projector, the SigLIP baseline tower). Attention probabilities and logits are not grids.
 */
export function isStorableTap(tap: string): boolean {
  const kind = parseHook(tap).kind;
  return HEAD_MAJOR.has(kind) || FLAT.has(kind) || PACKED.has(kind) || LLAVA_TILES.has(kind) || SIGLIP_TILES.has(kind);
}

export function checkStorableTap(tap: string): void {
  if (!isStorableTap(tap)) {
    throw new KvlensUsageError(`tap "${tap}" cannot be stored: the store keeps per-position language-model taps ` +
      '(lm.embed, lm.{L}.resid, lm.{L}.attn.k, lm.{L}.attn.v, lm.{L}.attn.{q,k,v}_proj, lm.final_norm), image.packed, ' +
      'and base-tile vision taps (vision.embed, vision.{L}.out, vision.post_norm, projector.out, siglip.embed, siglip.{L}.out, siglip.post_norm)');
  }
}

/**
 * The views a tap is stored for, among the store's views: sequence and packed taps every view but "siglip";
 * LLaVA's per-tile taps only "base" (tile 0 is the base view; the high-res grid is unpadded/downsampled from the
 * other tiles, which only the packed features represent); SigLIP baseline taps only "siglip".
 */
export function tapViews(tap: string, storeViews: readonly string[]): string[] {
  const kind = parseHook(tap).kind;
  if (SIGLIP_TILES.has(kind)) return storeViews.filter((v) => v === SIGLIP_VIEW);
  if (LLAVA_TILES.has(kind)) return storeViews.filter((v) => v === 'base');
  return storeViews.filter((v) => v !== SIGLIP_VIEW);
}

/** Read the layout of a captured tap from its name and shape; throws naming the tap on a wrong rank or batch. */
export function tapLayout(tap: string, t: TapTensor): TapLayout {
  checkStorableTap(tap);
  const s = t.shape;
  if (numel(s) !== t.data.length) throw new KvlensUsageError(`tap "${tap}": shape [${s.join(', ')}] needs ${numel(s)} values, data has ${t.data.length}`);
  const kind = parseHook(tap).kind;
  if (HEAD_MAJOR.has(kind)) {
    // [batch, kvHead, pos, dHead]
    if (s.length !== 4 || s[0] !== 1) throw new KvlensUsageError(`tap "${tap}": expected [1, kvHead, pos, dHead], got [${s.join(', ')}]`);
    return { kind: 'headMajor', heads: s[1], headDim: s[3], dim: s[1] * s[3], seqLen: s[2], origin: 0 };
  }
  if (PACKED.has(kind)) {
    // [imageToken, D]
    const origin = t.origin ?? 0;
    if (s.length !== 2) throw new KvlensUsageError(`tap "${tap}": expected [imageToken, D], got [${s.join(', ')}]`);
    if (!Number.isInteger(origin) || origin < 0) throw new KvlensUsageError(`tap "${tap}": origin ${origin} must be a non-negative integer`);
    return { kind: 'packed', heads: 1, headDim: s[1], dim: s[1], seqLen: s[0], origin };
  }
  if (LLAVA_TILES.has(kind) || SIGLIP_TILES.has(kind)) {
    // [tile, token, D]
    if (s.length !== 3 || s[0] < 1) throw new KvlensUsageError(`tap "${tap}": expected [tile, token, D] with at least one tile, got [${s.join(', ')}]`);
    return { kind: 'tiles', heads: 1, headDim: s[2], dim: s[2], seqLen: s[1], origin: 0 };
  }
  // [batch, pos, D]
  if (s.length !== 3 || s[0] !== 1) throw new KvlensUsageError(`tap "${tap}": expected [1, pos, D], got [${s.join(', ')}]`);
  const heads = t.heads ?? 1;
  if (!Number.isInteger(heads) || heads < 1 || s[2] % heads !== 0) {
    throw new KvlensUsageError(`tap "${tap}": D = ${s[2]} does not split into ${heads} heads`);
  }
  return { kind: 'flat', heads, headDim: s[2] / heads, dim: s[2], seqLen: s[1], origin: 0 };
}

/**
 * Check a view's token map against a tap's layout; throws naming the view. Sequence taps need every position inside
 * the sequence, packed taps inside [origin, origin + imageToken), tile taps a grid of exactly `token` cells.
 */
export function checkViewTokens(view: string, v: ViewTokens, layout: Pick<TapLayout, 'kind' | 'seqLen' | 'origin'>, tap: string): void {
  if (!Number.isInteger(v.rows) || !Number.isInteger(v.cols) || v.rows < 1 || v.cols < 1) {
    throw new KvlensUsageError(`view "${view}": grid ${v.rows} x ${v.cols} must be positive integers`);
  }
  if (v.positions.length !== v.rows * v.cols) {
    throw new KvlensUsageError(`view "${view}": ${v.positions.length} positions for a ${v.rows} x ${v.cols} grid`);
  }
  if (layout.kind === 'tiles') {
    if (v.rows * v.cols !== layout.seqLen) {
      throw new KvlensUsageError(`view "${view}": a ${v.rows} x ${v.cols} grid, but tap "${tap}" has ${layout.seqLen} tokens per tile`);
    }
    return;
  }
  const lo = layout.origin;
  const hi = layout.origin + layout.seqLen;
  for (let i = 0; i < v.positions.length; i++) {
    const p = v.positions[i];
    if (!Number.isInteger(p) || p < lo || p >= hi) {
      const range = layout.kind === 'packed' ? `image tokens at positions ${lo}..${hi - 1}` : `sequence of ${layout.seqLen}`;
      throw new KvlensUsageError(`view "${view}": position ${p} (cell ${i}) is outside tap "${tap}"'s ${range}`);
    }
  }
}

/** Gather one view's image tokens: returns [rows, cols, dim] (head-major D). */
export function gatherGrid(t: TapTensor, layout: TapLayout, v: ViewTokens): Float32Array {
  const { heads, headDim, dim, seqLen } = layout;
  const cells = v.rows * v.cols;
  const out = new Float32Array(cells * dim);
  if (layout.kind === 'tiles') {
    out.set(t.data.subarray(0, cells * dim)); // tile 0: [token, D], token = r * cols + c
    return out;
  }
  for (let cell = 0; cell < cells; cell++) {
    const pos = v.positions[cell] - layout.origin;
    const dst = cell * dim;
    if (layout.kind === 'flat' || layout.kind === 'packed') {
      out.set(t.data.subarray(pos * dim, pos * dim + dim), dst);
      continue;
    }
    for (let h = 0; h < heads; h++) {
      const src = (h * seqLen + pos) * headDim; // [0, h, pos, :]
      out.set(t.data.subarray(src, src + headDim), dst + h * headDim);
    }
  }
  return out;
}
