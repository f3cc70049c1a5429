// Welford/Chan against a two-pass computation, shard merging, per-head split, state save/load and the grid check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PositionWelford, checkSameGrid, type KeyGridShape } from '../../../src/experiments/keys/variance.js';
import { KeyVarianceState } from '../../../src/experiments/keys/state.js';
import { KvlensInputError, KvlensUsageError } from '../../../src/util/errors.js';
import { Rng } from '../../../src/util/random.js';

const SHAPE: KeyGridShape = { rows: 3, cols: 4, heads: 2, headDim: 5 };
const P = SHAPE.rows * SHAPE.cols;
const D = SHAPE.heads * SHAPE.headDim;

/** N images of keys [P, D]: a large per-(position, dim) offset (stresses the naive formula) plus per-position spread. */
function sample(n: number, seed: number): Float64Array[] {
  const rng = new Rng(seed);
  const offset = Array.from({ length: P * D }, () => 1e4 + rng.normal() * 100);
  const spread = Array.from({ length: P }, (_, p) => 0.01 * (p + 1) ** 2);
  return Array.from({ length: n }, () => Float64Array.from({ length: P * D }, (_, i) => offset[i] + spread[Math.floor(i / D)] * rng.normal()));
}

/** Two-pass reference: mean first, then the mean squared L2 distance to it; per head too. */
function twoPass(xs: Float64Array[]): { total: number[]; perHead: number[][] } {
  const n = xs.length;
  const mean = new Float64Array(P * D);
  for (const x of xs) for (let i = 0; i < x.length; i++) mean[i] += x[i] / n;
  const perHead = Array.from({ length: SHAPE.heads }, () => new Array<number>(P).fill(0));
  for (const x of xs) {
    for (let p = 0; p < P; p++) for (let d = 0; d < D; d++) perHead[Math.floor(d / SHAPE.headDim)][p] += (x[p * D + d] - mean[p * D + d]) ** 2 / n;
  }
  return { total: Array.from({ length: P }, (_, p) => perHead.reduce((a, h) => a + h[p], 0)), perHead };
}

function assertRel(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    const rel = Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), 1e-300);
    assert.ok(rel <= tol, `${what}[${i}]: ${got[i]} vs ${want[i]} (relative ${rel})`);
  }
}

test('Welford per position matches the two-pass L2 variance to 1e-9 relative, per head and in total', () => {
  const xs = sample(57, 1);
  const w = new PositionWelford(SHAPE);
  for (const x of xs) w.add(x);
  const ref = twoPass(xs);
  assertRel(w.variance('sum'), ref.total, 1e-9, 'sum');
  assertRel(w.variance('mean'), ref.total.map((v) => v / D), 1e-9, 'mean');
  w.headVariance('sum').forEach((h, k) => assertRel(h, ref.perHead[k], 1e-9, `head ${k}`));
  // the spread grows with p: the statistic must see it (10 dims x spread^2)
  assertRel([w.variance('sum')[P - 1] / w.variance('sum')[0]], [(0.01 * P * P) ** 2 / 0.01 ** 2], 0.5, 'spread ratio');
});

test('Chan merge of partial states equals one pass; empty states merge as identity', () => {
  const xs = sample(40, 2);
  const single = new PositionWelford(SHAPE);
  for (const x of xs) single.add(x);
  const parts = [xs.slice(0, 7), xs.slice(7, 8), xs.slice(8, 31), xs.slice(31)].map((chunk) => {
    const w = new PositionWelford(SHAPE);
    for (const x of chunk) w.add(x);
    return w;
  });
  const merged = new PositionWelford(SHAPE);
  merged.merge(new PositionWelford(SHAPE));
  for (const p of parts) merged.merge(p);
  merged.merge(new PositionWelford(SHAPE));
  assert.equal(merged.n, 40);
  assertRel(merged.variance(), single.variance(), 1e-9, 'merged');
  assertRel(merged.mean, single.mean, 1e-12, 'merged mean');
  assert.throws(() => merged.merge(new PositionWelford({ ...SHAPE, cols: 5 })), KvlensUsageError);
});

test('a key identical in every image has variance exactly 0', () => {
  const xs = sample(9, 3);
  for (const x of xs) for (let d = 0; d < D; d++) x[5 * D + d] = 0.1 * (d + 1) + 3.7; // position 5 constant
  const w = new PositionWelford(SHAPE);
  for (const x of xs) w.add(Float32Array.from(x));
  const v = w.variance();
  assert.equal(v[5], 0);
  assert.ok(v.every((x, p) => p === 5 || x > 0));
});

test('state: save/load round trip, resume counts, merge of disjoint shards, refusals', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-keystate-'));
  const xs = sample(12, 4);
  const ids = xs.map((_, i) => `img-${i}`);
  const whole = new KeyVarianceState({ tap: 'lm.{L}.attn.k', view: 'base', shape: SHAPE, imageIds: ids }, [3, 5]);
  for (const x of xs) for (const w of whole.layers.values()) w.add(x);

  const a = new KeyVarianceState({ tap: 'lm.{L}.attn.k', view: 'base', shape: SHAPE, imageIds: ids.slice(0, 5) }, [3, 5]);
  const b = new KeyVarianceState({ tap: 'lm.{L}.attn.k', view: 'base', shape: SHAPE, imageIds: ids.slice(5) }, [3, 5]);
  xs.forEach((x, i) => { for (const w of (i < 5 ? a : b).layers.values()) w.add(x); });
  a.save(join(dir, 'a.safetensors'));
  const a2 = KeyVarianceState.load(join(dir, 'a.safetensors'));
  assert.deepEqual(a2.meta, a.meta);
  assert.deepEqual([...a2.layers.keys()].sort(), [3, 5]);
  assert.deepEqual(a2.layer(3).mean, a.layer(3).mean);
  assert.equal(a2.layer(5).n, 5);
  const merged = a2.merge(b);
  assert.deepEqual(merged.meta.imageIds, ids);
  for (const l of [3, 5]) assertRel(merged.layer(l).variance(), whole.layer(l).variance(), 1e-9, `layer ${l}`);

  assert.throws(() => merged.merge(b), /both include image "img-5"/);
  const partial = new KeyVarianceState({ tap: 'lm.{L}.attn.k', view: 'base', shape: SHAPE, imageIds: ['x', 'y'] }, [3, 5]);
  partial.layer(3).add(xs[0]);
  assert.equal(partial.complete, false);
  assert.throws(() => a.merge(partial), /only complete/);
  partial.save(join(dir, 'p.safetensors'));
  const p2 = KeyVarianceState.load(join(dir, 'p.safetensors'));
  assert.deepEqual([p2.layer(3).n, p2.layer(5).n], [1, 0]);
  assert.throws(() => KeyVarianceState.load(join(dir, 'missing.safetensors')), KvlensInputError);
});

test('checkSameGrid refuses a different grid and points to --resolution', () => {
  checkSameGrid({ imageId: 'a', rows: 4, cols: 6 }, { imageId: 'b', rows: 4, cols: 6 }, 'highres');
  assert.throws(() => checkSameGrid({ imageId: 'a', rows: 4, cols: 6 }, { imageId: 'b', rows: 6, cols: 4 }, 'highres'),
    (e: Error) => e instanceof KvlensInputError && /"b" has a 6 x 4/.test(e.message) && /--resolution/.test(e.message));
});
