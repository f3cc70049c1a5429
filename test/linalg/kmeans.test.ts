import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kmeans, kmeansElbow } from '../../src/linalg/kmeans.js';
import { Rng } from '../../src/util/random.js';

function blobs(centres: number[][], perBlob: number, spread: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const dim = centres[0].length;
  const x = new Float32Array(centres.length * perBlob * dim);
  let o = 0;
  for (const c of centres) for (let i = 0; i < perBlob; i++) for (let j = 0; j < dim; j++) x[o++] = c[j] + spread * rng.normal();
  return x;
}

test('k-means on a hand-sized case: two pairs of points, known centroids and inertia', () => {
  const x = Float32Array.from([0, 0, 0, 2, 10, 0, 10, 2]);
  const r = kmeans(x, 2, 2, { seed: 5 });
  assert.equal(r.assignment[0], r.assignment[1]);
  assert.equal(r.assignment[2], r.assignment[3]);
  assert.notEqual(r.assignment[0], r.assignment[2]);
  // each point is 1 away from its centroid: inertia 4
  assert.ok(Math.abs(r.inertia - 4) < 1e-9);
  const c0 = r.assignment[0];
  assert.deepEqual(Array.from(r.centroids.subarray(c0 * 2, c0 * 2 + 2)), [0, 1]);
});

test('k-means recovers well-separated blobs and is deterministic for a seed', () => {
  const x = blobs([[0, 0, 0], [20, 0, 0], [0, 20, 0]], 50, 1, 2);
  const a = kmeans(x, 3, 3, { seed: 9 });
  const b = kmeans(x, 3, 3, { seed: 9 });
  assert.deepEqual(Array.from(a.assignment), Array.from(b.assignment));
  for (let blob = 0; blob < 3; blob++) {
    const labels = new Set(Array.from(a.assignment.subarray(blob * 50, blob * 50 + 50)));
    assert.equal(labels.size, 1, `blob ${blob} split across clusters`);
  }
});

test('elbow rule picks the planted number of clusters', () => {
  // 32-dim blobs of 200 points: splitting one further removes well under 2.5% of the inertia.
  const corner = (a: number, b: number): number[] => Array.from({ length: 32 }, (_, j) => (j === 0 ? a : j === 1 ? b : 0));
  const x = blobs([corner(0, 0), corner(30, 0), corner(0, 30), corner(30, 30)], 200, 1, 4);
  const r = kmeansElbow(x, 32, { seed: 1 });
  // Amir et al.'s loop stops at the first k that fails to improve by 2.5%, i.e. one past the elbow.
  assert.equal(r.k, 5);
  const big = new Set<number>();
  for (let blob = 0; blob < 4; blob++) {
    const counts = new Map<number, number>();
    for (const a of r.assignment.subarray(blob * 200, blob * 200 + 200)) counts.set(a, (counts.get(a) ?? 0) + 1);
    big.add([...counts.entries()].sort((p, q) => q[1] - p[1])[0][0]);
  }
  assert.equal(big.size, 4, 'each blob has its own majority cluster');
});
