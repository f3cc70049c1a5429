import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundaryF, boundaryRadius, davisStatistics, diskOffsets, evaluateDavisSequence, regionJ, seg2bmap, summarizeDavis } from '../../src/metrics/davis.js';

function rect(h: number, w: number, y0: number, x0: number, y1: number, x1: number, v = 1): Uint8Array {
  const m = new Uint8Array(h * w);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * w + x] = v;
  return m;
}

test('J: IoU of known masks; empty vs empty = 1; void pixels skipped', () => {
  const a = rect(4, 4, 0, 0, 2, 2); // 4 px
  const b = rect(4, 4, 0, 0, 2, 4); // 8 px, contains a
  assert.equal(regionJ(a, b), 0.5);
  assert.equal(regionJ(new Uint8Array(16), new Uint8Array(16)), 1);
  assert.equal(regionJ(a, new Uint8Array(16)), 0);
  const voidMask = rect(4, 4, 0, 2, 2, 4); // the 4 extra pixels of b
  assert.equal(regionJ(a, b, voidMask), 1);
});

test('seg2bmap marks the toolkit boundary pixels of a square', () => {
  // 5x5 with a 2x2 square at rows 1-2, cols 1-2
  const m = rect(5, 5, 1, 1, 3, 3);
  const b = seg2bmap(m, { height: 5, width: 5 });
  const rows = Array.from({ length: 5 }, (_, y) => Array.from(b.subarray(y * 5, y * 5 + 5)).join(''));
  // a pixel is on the boundary iff it differs from its E, S or SE neighbour (worked by hand):
  // row 0 sees the square below it (S/SE), row 1 only at its edges, row 2 everywhere it or its E changes.
  assert.deepEqual(rows, ['11100', '10100', '11100', '00000', '00000']);
});

test('disk offsets and dilation radius follow skimage / the toolkit', () => {
  assert.equal(diskOffsets(1).length, 5);
  assert.equal(diskOffsets(2).length, 13);
  // 480x854: ceil(0.008 * 979.66) = 8
  assert.equal(boundaryRadius({ height: 480, width: 854 }), 8);
  assert.equal(boundaryRadius({ height: 100, width: 100 }, 3), 3);
});

test('F: identical boundaries 1, a far-away shape 0, a small shift within the tolerance still 1', () => {
  const size = { height: 60, width: 60 };
  const a = rect(60, 60, 10, 10, 30, 30);
  assert.equal(boundaryF(a, a, size), 1);
  assert.equal(boundaryF(a, rect(60, 60, 40, 40, 55, 55), size), 0);
  // radius = ceil(0.008 * 84.85) = 1: a one-pixel shift is fully matched, a three-pixel shift is not
  assert.equal(boundaryF(a, rect(60, 60, 11, 10, 31, 30), size), 1);
  const f3 = boundaryF(a, rect(60, 60, 13, 10, 33, 30), size);
  assert.ok(f3 > 0 && f3 < 1, `F for a 3-px shift = ${f3}`);
  // empty-boundary conventions
  const empty = new Uint8Array(3600);
  assert.equal(boundaryF(empty, empty, size), 1);
  assert.equal(boundaryF(a, empty, size), 0); // P = 1, R = 0
  assert.equal(boundaryF(empty, a, size), 0); // P = 0, R = 1
});

test('F by hand: a vertical edge shifted by two pixels with radius 1', () => {
  // 4 rows x 6 cols, gt fills cols 0-1, pred fills cols 0-3; bound_th = 1 pixel.
  const size = { height: 4, width: 6 };
  const gt = new Uint8Array(24); const pred = new Uint8Array(24);
  for (let y = 0; y < 4; y++) { for (let x = 0; x < 2; x++) gt[y * 6 + x] = 1; for (let x = 0; x < 4; x++) pred[y * 6 + x] = 1; }
  // gt boundary: col 1 rows 0-3 (4 px); pred boundary: col 3 rows 0-3 (4 px); distance 2 > 1 -> F = 0
  assert.equal(boundaryF(gt, pred, size, { boundTh: 1 }), 0);
  // with radius 2 every boundary pixel matches
  assert.equal(boundaryF(gt, pred, size, { boundTh: 2 }), 1);
});

test('statistics and sequence evaluation exclude the first and last frames', () => {
  const s = davisStatistics([1, 1, 0, 0, 0.6]);
  assert.equal(s.mean, 2.6 / 5);
  assert.equal(s.recall, 3 / 5);
  const size = { height: 20, width: 20 };
  const obj = rect(20, 20, 5, 5, 15, 15, 1);
  const gts = [obj, obj, obj, obj];
  // frame 0 and 3 are garbage but excluded; frames 1-2: perfect and empty
  const preds = [new Uint8Array(400), obj, new Uint8Array(400), new Uint8Array(400)];
  const res = evaluateDavisSequence('seq', gts, preds, size);
  assert.equal(res.length, 1);
  assert.deepEqual(res[0].j, [1, 0]);
  assert.deepEqual(res[0].f, [1, 0]);
  const sum = summarizeDavis(res);
  assert.equal(sum.jMean, 0.5);
  assert.equal(sum.jfMean, 0.5);
});

test('void (255) in the ground truth counts as background, as the toolkit reader does', () => {
  const size = { height: 10, width: 10 };
  const gt = rect(10, 10, 0, 0, 5, 10, 1);
  for (let i = 50; i < 60; i++) gt[i] = 255; // row 5 void
  const pred = rect(10, 10, 0, 0, 6, 10, 1); // also covers the void row
  const res = evaluateDavisSequence('v', [gt, gt, gt], [pred, pred, pred], size);
  assert.equal(res[0].objectId, 1);
  assert.equal(res[0].j[0], 50 / 60);
});

test('boundary radius uses numpy\'s norm (sqrt of the exact sum): 35x120 has diagonal 125, radius ceil(1.0) = 1', () => {
  // Math.hypot(35, 120) = 125.00000000000001 gave radius 2; np.ceil(0.008 * np.linalg.norm((35, 120))) = 1.
  assert.equal(boundaryRadius({ height: 35, width: 120 }), 1);
  assert.equal(boundaryRadius({ height: 70, width: 240 }), 2); // diagonal 250 -> 2.0 -> 2
  assert.equal(boundaryRadius({ height: 36, width: 120 }), 2); // 125.28... -> 1.002 -> 2
});
