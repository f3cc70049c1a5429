// From a tap's whole-sequence tensor to the image-token grids the store keeps: pick the image tokens of each view,
// in raster order, and lay them out as [rows, cols, D] with D = heads x headDim flattened head-major. What a tap is
// (its layout, the views it is kept on) comes from the tap table (src/taps/table.ts), never from its name:
//   seq / seqHeads  lm.*                        [1, pos, D] / [1, kvHead, pos, dHead]: the view's sequence positions
//   rows            image.packed, Qwen's projector.out and vision.*  [row, D], row 0 at `origin`: positions - origin
//   tiles           LLaVA's vision.* / projector.out, baseline.*     [tile, token, D]: tile 0, grid cell k = token
//                   origin + k (origin = the tower's CLS tokens)
import { resolveStoredLayout, storedViews, tapKind, SIGLIP_VIEW } from '../taps/table.js';
import type { ViewTokens } from '../preprocess/token-map.js';
import { numel } from '../tensor/tensor.js';
import { KvlensUsageError } from '../util/errors.js';
import type { TapDims } from './format.js';

/** One captured tap for one image (batch 1), in the layout src/taps/names.ts documents for that name. */
export interface TapTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
  /** For [batch, pos, heads*headDim] taps (k_proj, v_proj, q_proj): how many heads D splits into (default 1). */
  readonly heads?: number;
  /** rows layout: the position of row 0 (image.packed: the image's first token); tiles layout: CLS tokens before the grid. */
  readonly origin?: number;
}

export type { ViewTokens };
export { SIGLIP_VIEW };

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
   * 'packed' = [row, D] starting at position `origin`; 'tiles' = [tile, token, D] (tile 0 is stored, its grid
   * starting at token `origin`; seqLen = grid tokens).
   */
  readonly kind: 'headMajor' | 'flat' | 'packed' | 'tiles';
  /** packed: position of row 0; tiles: leading (CLS) tokens */
  readonly origin: number;
}

/**
 * Taps the store can hold: per-position language-model taps, the packed image features, and the vision-side taps
 * (the model's tower and projector, the encoder baseline). Attention probabilities and logits are not grids.
 */
export function isStorableTap(tap: string): boolean {
  return tapKind(tap).store.kind !== 'none';
}

export function checkStorableTap(tap: string): void {
  const rule = tapKind(tap).store;
  if (rule.kind === 'none') {
    throw new KvlensUsageError(`tap "${tap}" cannot be stored: ${rule.why}. The store keeps per-position language-model taps ` +
      '(lm.embed, lm.{L}.resid, lm.{L}.attn.k, lm.{L}.attn.v, lm.{L}.attn.{q,k,v}_proj, lm.final_norm), image.packed, ' +
      'vision taps (vision.embed, vision.{L}.out, vision.post_norm, projector.out) and the encoder baseline (baseline.*, siglip.*)');
  }
}

/** The views a tap is stored for, among the store's views (the tap table's store rule). */
export function tapViews(tap: string, storeViews: readonly string[]): string[] {
  return storedViews(tap, storeViews);
}

/** Read the layout of a captured tap from the tap table and its shape; throws naming the tap on a wrong rank or batch. */
export function tapLayout(tap: string, t: TapTensor): TapLayout {
  checkStorableTap(tap);
  const s = t.shape;
  if (numel(s) !== t.data.length) throw new KvlensUsageError(`tap "${tap}": shape [${s.join(', ')}] needs ${numel(s)} values, data has ${t.data.length}`);
  const layout = resolveStoredLayout(tap, s.length);
  const origin = t.origin ?? 0;
  if (!Number.isInteger(origin) || origin < 0) throw new KvlensUsageError(`tap "${tap}": origin ${origin} must be a non-negative integer`);
  if (layout === 'seqHeads') {
    // [batch, kvHead, pos, dHead]
    if (s.length !== 4 || s[0] !== 1) throw new KvlensUsageError(`tap "${tap}": expected [1, kvHead, pos, dHead], got [${s.join(', ')}]`);
    return { kind: 'headMajor', heads: s[1], headDim: s[3], dim: s[1] * s[3], seqLen: s[2], origin: 0 };
  }
  if (layout === 'rows') {
    // [row, D]
    if (s.length !== 2) throw new KvlensUsageError(`tap "${tap}": expected [row, D], got [${s.join(', ')}]`);
    return { kind: 'packed', heads: 1, headDim: s[1], dim: s[1], seqLen: s[0], origin };
  }
  if (layout === 'tiles') {
    // [tile, token, D]
    if (s.length !== 3 || s[0] < 1) throw new KvlensUsageError(`tap "${tap}": expected [tile, token, D] with at least one tile, got [${s.join(', ')}]`);
    if (origin >= s[1]) throw new KvlensUsageError(`tap "${tap}": ${origin} leading tokens leave no grid in ${s[1]} tokens per tile`);
    return { kind: 'tiles', heads: 1, headDim: s[2], dim: s[2], seqLen: s[1] - origin, origin };
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
    const o = layout.origin * dim; // tile 0: [token, D], token = origin + r * cols + c
    out.set(t.data.subarray(o, o + cells * dim));
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
