import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCorrespondenceProbe, transferKeypoints, type CorrespondencePair } from '../../src/probes/correspondence.js';
import { Rng } from '../../src/util/random.js';
import type { FeatureGrid } from '../../src/probes/grid.js';

const R = 12; const C = 16; const DIM = 24; const W = 320; const H = 240; // 20 px tokens

/** A scene of distinct random token descriptors; the target shows it shifted by (dr, dc) tokens. */
function shiftedPair(rng: Rng, dr: number, dc: number, noise: number, independent = false): CorrespondencePair {
  const big = new Float32Array((R + 8) * (C + 8) * DIM).map(() => rng.normal());
  const crop = (r0: number, c0: number): FeatureGrid => {
    const data = new Float32Array(R * C * DIM);
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) for (let j = 0; j < DIM; j++) data[(r * C + c) * DIM + j] = big[((r + r0) * (C + 8) + c + c0) * DIM + j] + noise * rng.normal();
    return { rows: R, cols: C, dim: DIM, data };
  };
  const source = crop(4, 4);
  const target = independent ? { rows: R, cols: C, dim: DIM, data: new Float32Array(R * C * DIM).map(() => rng.normal()) } : crop(4 - dr, 4 - dc);
  // keypoints at random positions whose shifted location stays inside the target
  const src = []; const trg = [];
  for (let k = 0; k < 10; k++) {
    const r = Math.max(0, -dr) + rng.int(R - Math.abs(dr)); const c = Math.max(0, -dc) + rng.int(C - Math.abs(dc));
    const x = (c + rng.uniform()) * (W / C); const y = (r + rng.uniform()) * (H / R);
    src.push({ x, y });
    trg.push({ x: x + dc * (W / C), y: y + dr * (H / R) });
  }
  return { source, target, sourceSize: { width: W, height: H }, targetSize: { width: W, height: H }, sourceKeypoints: src, targetKeypoints: trg, targetBBox: [0, 0, 200, 100], category: 'cat' };
}

const value = (r: { metrics: { metric: string; value: number }[] }, m: string): number => r.metrics.find((x) => x.metric === m)!.value;

test('a known shift between two grids is recovered: predicted points are the shifted token centres', () => {
  const rng = new Rng(1);
  const pair = shiftedPair(rng, 2, -3, 0.1);
  const pred = transferKeypoints(pair);
  pair.sourceKeypoints.forEach((kp, i) => {
    const c = Math.floor((kp.x * C) / W) - 3; const r = Math.floor((kp.y * R) / H) + 2;
    assert.deepEqual(pred[i], { x: (c + 0.5) * (W / C), y: (r + 0.5) * (H / R) });
  });
});

test('PCK near 1 for shifted grids, near chance for unrelated noise', async () => {
  const rng = new Rng(2);
  const pairs = Array.from({ length: 6 }, (_, i) => shiftedPair(rng, (i % 3) - 1, 2 - (i % 5), 0.2));
  // threshold 0.1 * 200 = 20 px: a token centre is within 20 px of any point inside its 20x20 token
  const good = await runCorrespondenceProbe(pairs, { alphas: [0.1, 0.05] });
  assert.ok(value(good, 'PCK@0.1.point') > 0.98, `PCK ${value(good, 'PCK@0.1.point')}`);
  assert.ok(value(good, 'PCK@0.1.image') > 0.95);
  assert.ok(value(good, 'PCK@0.1.image.cat') > 0.95);
  assert.equal(good.metrics.find((m) => m.metric === 'PCK@0.1.point')!.n, 60);
  const noise = await runCorrespondenceProbe(Array.from({ length: 6 }, () => shiftedPair(rng, 1, 1, 0.2, true)));
  assert.ok(value(noise, 'PCK@0.1.point') < 0.2, `noise PCK ${value(noise, 'PCK@0.1.point')}`);
});

test('exact pixel extent: a 27x27 SigLIP grid covers 378 of 384 px; matches land on the patch centres', async () => {
  const { patchGridExtent } = await import('../../src/probes/grid.js');
  const n = 27;
  const e = patchGridExtent(n, 14, 384);
  assert.equal(e, 378 / 384);
  // one-hot token features: each token matches itself
  const dim = n * n;
  const data = new Float32Array(n * n * dim);
  for (let t = 0; t < n * n; t++) data[t * dim + t] = 1;
  const grid = { rows: n, cols: n, dim, data, extent: { x: e, y: e } };
  const size = { width: 768, height: 384 }; // squashed to 384x384: x scale 2, y scale 1
  // a keypoint inside patch (row 5, col 20): pixels [280, 294) x [70, 84) of the 384 tile
  const kp = { x: 2 * 287, y: 77 };
  const [p] = transferKeypoints({ source: grid, target: grid, sourceSize: size, targetSize: size, sourceKeypoints: [kp], targetKeypoints: [kp], targetBBox: [0, 0, 768, 384] });
  assert.deepEqual(p, { x: 2 * (20 * 14 + 7), y: 5 * 14 + 7 }, 'the patch centre (287, 77) in tile pixels, scaled back');
  // without the extent the grid would be stretched over all 384 px: a 1.6% scale error at the far edge
  const [q] = transferKeypoints({ source: { ...grid, extent: undefined }, target: { ...grid, extent: undefined }, sourceSize: size, targetSize: size, sourceKeypoints: [kp], targetKeypoints: [kp], targetBBox: [0, 0, 768, 384] });
  assert.notDeepEqual(q, p);
  // a point in the uncovered strip (x >= 378 px of the tile) belongs to the last column
  const [edge] = transferKeypoints({ source: grid, target: grid, sourceSize: size, targetSize: size, sourceKeypoints: [{ x: 2 * 381, y: 10 }], targetKeypoints: [kp], targetBBox: [0, 0, 768, 384] });
  assert.equal(edge.x, 2 * (26 * 14 + 7));
});
