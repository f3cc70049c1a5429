// From a tap's whole-sequence tensor to the image-token grids the store keeps: pick the image tokens of each view,
// in raster order, and lay them out as [rows, cols, D] with D = heads x headDim flattened head-major.

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
}

export interface TapLayout extends TapDims {
  /** Sequence length of the captured tensor. */
  readonly seqLen: number;
  /** 'headMajor' = [1, heads, pos, headDim] (cached k/v); 'flat' = [1, pos, heads*headDim]. */
  readonly kind: 'headMajor' | 'flat';
}

const HEAD_MAJOR = new Set(['lm.attn.k', 'lm.attn.v']);
const FLAT = new Set(['lm.embed', 'lm.resid', 'lm.final_norm', 'lm.attn.q_proj', 'lm.attn.k_proj', 'lm.attn.v_proj']);

/** Taps the store can hold: language-model taps with one vector per sequence position. */
export function isStorableTap(tap: string): boolean {
  const kind = parseHook(tap).kind;
  return HEAD_MAJOR.has(kind) || FLAT.has(kind);
}

export function checkStorableTap(tap: string): void {
  if (!isStorableTap(tap)) {
    throw new KvlensUsageError(`tap "${tap}" cannot be stored: the store keeps per-position language-model taps ` +
      '(lm.embed, lm.{L}.resid, lm.{L}.attn.k, lm.{L}.attn.v, lm.{L}.attn.{q,k,v}_proj, lm.final_norm)');
  }
}

/** Read the layout of a captured tap from its name and shape; throws naming the tap on a wrong rank or batch. */
export function tapLayout(tap: string, t: TapTensor): TapLayout {
  checkStorableTap(tap);
  const s = t.shape;
  if (numel(s) !== t.data.length) throw new KvlensUsageError(`tap "${tap}": shape [${s.join(', ')}] needs ${numel(s)} values, data has ${t.data.length}`);
  if (HEAD_MAJOR.has(parseHook(tap).kind)) {
    // [batch, kvHead, pos, dHead]
    if (s.length !== 4 || s[0] !== 1) throw new KvlensUsageError(`tap "${tap}": expected [1, kvHead, pos, dHead], got [${s.join(', ')}]`);
    return { kind: 'headMajor', heads: s[1], headDim: s[3], dim: s[1] * s[3], seqLen: s[2] };
  }
  // [batch, pos, D]
  if (s.length !== 3 || s[0] !== 1) throw new KvlensUsageError(`tap "${tap}": expected [1, pos, D], got [${s.join(', ')}]`);
  const heads = t.heads ?? 1;
  if (!Number.isInteger(heads) || heads < 1 || s[2] % heads !== 0) {
    throw new KvlensUsageError(`tap "${tap}": D = ${s[2]} does not split into ${heads} heads`);
  }
  return { kind: 'flat', heads, headDim: s[2] / heads, dim: s[2], seqLen: s[1] };
}

/** Check a view's token map against a sequence length; throws naming the view. */
export function checkViewTokens(view: string, v: ViewTokens, seqLen: number, tap: string): void {
  if (!Number.isInteger(v.rows) || !Number.isInteger(v.cols) || v.rows < 1 || v.cols < 1) {
    throw new KvlensUsageError(`view "${view}": grid ${v.rows} x ${v.cols} must be positive integers`);
  }
  if (v.positions.length !== v.rows * v.cols) {
    throw new KvlensUsageError(`view "${view}": ${v.positions.length} positions for a ${v.rows} x ${v.cols} grid`);
  }
  for (let i = 0; i < v.positions.length; i++) {
    const p = v.positions[i];
    if (!Number.isInteger(p) || p < 0 || p >= seqLen) {
      throw new KvlensUsageError(`view "${view}": position ${p} (cell ${i}) is outside tap "${tap}"'s sequence of ${seqLen}`);
    }
  }
}

/** Gather one view's image tokens: returns [rows, cols, dim] (head-major D). */
export function gatherGrid(t: TapTensor, layout: TapLayout, v: ViewTokens): Float32Array {
  const { heads, headDim, dim, seqLen } = layout;
  const cells = v.rows * v.cols;
  const out = new Float32Array(cells * dim);
  for (let cell = 0; cell < cells; cell++) {
    const pos = v.positions[cell];
    const dst = cell * dim;
    if (layout.kind === 'flat') {
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
