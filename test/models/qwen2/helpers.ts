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
