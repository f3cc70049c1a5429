import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cosineNearest, normalizeRows, topK } from '../../src/linalg/knn.js';
import { pca, pcaTransform } from '../../src/linalg/pca.js';
import { Rng } from '../../src/util/random.js';

test('cosine nearest neighbour ignores vector length', () => {
  const refs = Float32Array.from([1, 0, 0, 1, 1, 1]); // (1,0), (0,1), (1,1)
  const queries = Float32Array.from([100, 1, 0.1, 5, 2, 2.1]);
  const nn = cosineNearest(queries, refs, 2);
  assert.deepEqual(nn.map((n) => n.index), [0, 1, 2]);
  assert.ok(Math.abs(nn[0].similarity - 100 / Math.hypot(100, 1)) < 1e-6);
  const unit = normalizeRows(Float32Array.from([3, 4, 0, 0]), 2);
  assert.deepEqual(Array.from(unit), [0.6000000238418579, 0.800000011920929, 0, 0]);
});

test('topK returns the largest values, ties by lower index', () => {
  assert.deepEqual(topK([1, 5, 3, 5, 0], 3).map((n) => n.index), [1, 3, 2]);
});

test('PCA finds a planted dominant direction and its variance', () => {
  const rng = new Rng(2);
  const n = 2000; const dim = 6;
  const dir = [1, 2, 0, 0, -2, 0].map((v) => v / 3);
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const t = rng.normal() * 10;
    for (let j = 0; j < dim; j++) x[i * dim + j] = 5 + t * dir[j] + 0.1 * rng.normal();
  }
  const p = pca(x, dim, 2, { seed: 1 });
  const cos = Math.abs(dir.reduce((s, v, j) => s + v * p.components[j], 0));
  assert.ok(cos > 0.999, `|cos| = ${cos}`);
  assert.ok(Math.abs(p.variances[0] - 100) < 10, `variance ${p.variances[0]}`);
  assert.ok(p.variances[1] < 0.05);
  assert.ok(Math.abs(p.mean[0] - 5) < 0.5);
  const proj = pcaTransform(p, x, dim);
  assert.equal(proj.length, n * 2);
});
