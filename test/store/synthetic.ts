// Synthetic extractor output for store tests: every value is a closed-form function of (image, tap, head, pos, d), so
// tests compute the expected grids from the formula, independently of the store's gather code.

import type { ImageRecord, TapTensor, ViewTokens } from '../../src/store/gather.js';
import type { StoreIdentity } from '../../src/store/format.js';

export const KV_HEADS = 2;
export const D_HEAD = 4;
export const D_MODEL = 6;
export const TAPS = ['lm.embed', 'lm.0.attn.k', 'lm.0.attn.v', 'lm.1.attn.v', 'lm.1.resid', 'lm.1.attn.v_proj'] as const;
const PREFIX = 5;
const SUFFIX = 3;
const BASE = { rows: 3, cols: 3 };

export function identity(over: Partial<StoreIdentity> = {}): StoreIdentity {
  return {
    model: { path: '/models/tiny-llava', configSha256: 'a'.repeat(64) },
    processor: { imageSize: 384, gridPinpoints: [[384, 768]], resample: 'bicubic' },
    prompt: { template: '<|im_start|>user\n{prefix}<image>\n{question}', prefix: '' },
    taps: [...TAPS],
    dtype: 'float32',
    views: ['base', 'highres'],
    ...over,
  };
}

export function imageId(i: number): string {
  return `img/${String(i).padStart(4, '0')}.jpg`;
}

/** Highres grid varies per image; every third image has no highres view. */
function highresGrid(i: number): { rows: number; cols: number } | undefined {
  return i % 3 === 2 ? undefined : { rows: 2 + (i % 4), cols: 3 + (i % 2) };
}

/** Sequence: PREFIX text, base grid (contiguous), highres grid with a newline token after each row, SUFFIX text. */
export function layout(i: number): { seqLen: number; views: Record<string, ViewTokens> } {
  const baseStart = PREFIX;
  const base = { ...BASE, positions: Array.from({ length: BASE.rows * BASE.cols }, (_, k) => baseStart + k) };
  const views: Record<string, ViewTokens> = { base };
  let next = baseStart + BASE.rows * BASE.cols;
  const hr = highresGrid(i);
  if (hr) {
    const positions: number[] = [];
    for (let r = 0; r < hr.rows; r++) {
      for (let c = 0; c < hr.cols; c++) positions.push(next + r * (hr.cols + 1) + c);
    }
    views.highres = { ...hr, positions };
    next += hr.rows * (hr.cols + 1);
  }
  return { seqLen: next + SUFFIX, views };
}

/** The value of image i, tap index t, feature j (j = head*dHead + d for head-major taps) at sequence position pos. */
export function value(i: number, t: number, pos: number, j: number): number {
  // Mixed magnitudes and fractions that f16 cannot hold exactly.
  const x = Math.sin(i * 12.9898 + t * 78.233 + pos * 37.719 + j * 4.581) * 43758.5453;
  const frac = x - Math.floor(x);
  return (frac - 0.5) * 2 ** ((i + t + j) % 7 - 2) + (pos === 0 ? 1e-6 : 0);
}

export function record(i: number): ImageRecord {
  return { source: `/data/images/${imageId(i)}`, originalSize: { width: 300 + i, height: 200 + 2 * i }, views: layout(i).views };
}

/** Whole-sequence tensors for every tap, in the layouts of src/taps/names.ts. */
export function tensors(i: number, taps: readonly string[] = TAPS): Map<string, TapTensor> {
  const { seqLen } = layout(i);
  const out = new Map<string, TapTensor>();
  taps.forEach((tap) => {
    const t = TAPS.indexOf(tap as (typeof TAPS)[number]);
    if (tap.endsWith('.attn.k') || tap.endsWith('.attn.v')) {
      const data = new Float32Array(KV_HEADS * seqLen * D_HEAD); // [1, kvHead, pos, dHead]
      for (let h = 0; h < KV_HEADS; h++) {
        for (let p = 0; p < seqLen; p++) for (let d = 0; d < D_HEAD; d++) data[(h * seqLen + p) * D_HEAD + d] = value(i, t, p, h * D_HEAD + d);
      }
      out.set(tap, { shape: [1, KV_HEADS, seqLen, D_HEAD], data });
    } else {
      const dim = tap.endsWith('_proj') ? KV_HEADS * D_HEAD : D_MODEL;
      const data = new Float32Array(seqLen * dim); // [1, pos, D]
      for (let p = 0; p < seqLen; p++) for (let j = 0; j < dim; j++) data[p * dim + j] = value(i, t, p, j);
      out.set(tap, tap.endsWith('_proj') ? { shape: [1, seqLen, dim], data, heads: KV_HEADS } : { shape: [1, seqLen, dim], data });
    }
  });
  return out;
}

/** Expected stored grid [rows, cols, D] for image i, tap, view, from the formula (not from the gather code). */
export function expectedGrid(i: number, tap: string, view: string): { rows: number; cols: number; dim: number; data: Float32Array } | undefined {
  const v = layout(i).views[view];
  if (!v) return undefined;
  const t = TAPS.indexOf(tap as (typeof TAPS)[number]);
  const dim = tap.endsWith('.attn.k') || tap.endsWith('.attn.v') || tap.endsWith('_proj') ? KV_HEADS * D_HEAD : D_MODEL;
  const data = new Float32Array(v.rows * v.cols * dim);
  for (let r = 0; r < v.rows; r++) {
    for (let c = 0; c < v.cols; c++) {
      for (let j = 0; j < dim; j++) data[(r * v.cols + c) * dim + j] = value(i, t, v.positions[r * v.cols + c], j);
    }
  }
  return { rows: v.rows, cols: v.cols, dim, data };
}
