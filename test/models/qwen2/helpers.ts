// Shared helpers for the Qwen2 / decoder parity tests against the HF reference runs.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readAllTensors } from '../../../src/tensor/safetensors.js';
import { toF32, maxAbsDiff, type Tensor } from '../../../src/tensor/tensor.js';
import { HF_REF } from '../../helpers/fixtures.js';

export const TOL = 1e-4;
export const QWEN2_DIR = join(HF_REF, 'models', 'qwen2_tiny');
export const QWEN2_BF16_DIR = join(HF_REF, 'models', 'qwen2_tiny_bf16');
export const LLAVA_DIR = join(HF_REF, 'models', 'llava_onevision_tiny');

export function loadRun(name: string): Map<string, Tensor> {
  return readAllTensors(join(HF_REF, 'runs', `${name}.safetensors`));
}

export function ref(run: Map<string, Tensor>, name: string): Tensor {
  const t = run.get(name);
  if (!t) throw new Error(`reference tensor ${name} missing`);
  return t;
}

/** Assert shapes equal and max |a - b| <= tol; returns the max difference. */
export function close(actual: Tensor | undefined, expected: Tensor, what: string, tol = TOL): number {
  assert.ok(actual, `${what}: missing`);
  assert.deepEqual([...actual.shape], [...expected.shape], `${what}: shape`);
  const d = maxAbsDiff(toF32(actual), toF32(expected));
  assert.ok(d <= tol, `${what}: max |diff| ${d} > ${tol}`);
  return d;
}

export function ids(t: Tensor): number[][] {
  const [B, S] = t.shape;
  return Array.from({ length: B }, (_, b) => Array.from({ length: S }, (_, s) => Number((t.data as BigInt64Array)[b * S + s])));
}

/** max |a - b| over the elements whose multi-index passes `keep` (e.g. skip padded positions). */
export function closeWhere(actual: Tensor | undefined, expected: Tensor, keep: (idx: number[]) => boolean, what: string, tol = TOL): number {
  assert.ok(actual, `${what}: missing`);
  assert.deepEqual([...actual.shape], [...expected.shape], `${what}: shape`);
  const a = toF32(actual), e = toF32(expected);
  const shape = expected.shape;
  const idx = new Array<number>(shape.length).fill(0);
  let worst = 0, kept = 0;
  for (let i = 0; i < a.length; i++) {
    let r = i;
    for (let d = shape.length - 1; d >= 0; d--) { idx[d] = r % shape[d]; r = Math.floor(r / shape[d]); }
    if (!keep(idx)) continue;
    kept++;
    const diff = Math.abs(a[i] - e[i]);
    if (!(diff <= worst)) worst = Number.isNaN(diff) ? Infinity : diff;
  }
  assert.ok(kept > 0, `${what}: nothing compared`);
  assert.ok(worst <= tol, `${what}: max |diff| ${worst} > ${tol}`);
  return worst;
}
