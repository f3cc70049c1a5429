// Comparing a kvlens tensor with a reference tensor under a tolerance, producing one report row.

import { toF32, type Tensor } from '../tensor/tensor.js';

export type Tolerance =
  | { readonly kind: 'abs'; readonly max: number }
  | { readonly kind: 'exact' }
  | { readonly kind: 'pixels'; readonly max: number; readonly mean: number };

/** Float model tensors: a faithful float32 engine agrees with transformers to ~1e-5. */
export const MODEL_TOL: Tolerance = { kind: 'abs', max: 1e-4 };
export const EXACT: Tolerance = { kind: 'exact' };
/** Preprocessed pixels: resize kernels differ in the last bit of uint8 rounding. */
export const PIXEL_TOL: Tolerance = { kind: 'pixels', max: 0.02, mean: 0.002 };

export type RowStatus = 'pass' | 'FAIL' | 'from-fixture' | 'input' | 'skipped' | 'error';

export interface ParityRow {
  readonly run: string;
  readonly name: string;
  readonly shape: readonly number[];
  readonly status: RowStatus;
  readonly maxAbs?: number;
  readonly meanAbs?: number;
  readonly tolerance?: string;
  readonly note?: string;
}

export function describeTolerance(t: Tolerance): string {
  switch (t.kind) {
    case 'abs': return `max ${t.max}`;
    case 'exact': return 'exact';
    case 'pixels': return `max ${t.max} / mean ${t.mean}`;
  }
}

/**
 * Compare `got` against `ref`. `include` (one flag per element, optional) restricts the comparison to meaningful
 * elements, e.g. real tokens of a left-padded batch.
 */
export function compareTensors(run: string, name: string, ref: Tensor, got: Tensor, tol: Tolerance, include?: Uint8Array, note?: string): ParityRow {
  const base = { run, name, shape: ref.shape, tolerance: describeTolerance(tol) };
  if (ref.shape.length !== got.shape.length || ref.shape.some((d, i) => d !== got.shape[i])) {
    return { ...base, status: 'FAIL', note: `shape mismatch: kvlens [${got.shape.join(', ')}] vs reference [${ref.shape.join(', ')}]` };
  }
  const a = toF32(ref);
  const b = toF32(got);
  let max = 0;
  let sum = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (include && !include[i]) continue;
    const d = Math.abs(a[i] - b[i]);
    const dd = Number.isNaN(d) ? Infinity : d;
    if (dd > max) max = dd;
    sum += dd;
    n++;
  }
  const mean = n ? sum / n : 0;
  const ok = tol.kind === 'exact' ? max === 0 : tol.kind === 'abs' ? max <= tol.max : max <= tol.max && mean <= tol.mean;
  const parts = [note, include && n < a.length ? `${n} of ${a.length} elements compared` : undefined].filter(Boolean);
  return { ...base, status: ok ? 'pass' : 'FAIL', maxAbs: max, meanAbs: mean, note: parts.length ? parts.join('; ') : undefined };
}
