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
