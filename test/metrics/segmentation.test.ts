import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfusionAccumulator, FewShotAccumulator, OverallIoUAccumulator, binaryIntersectionUnion, cosegJaccardPrecision, iou, pixelAccuracy } from '../../src/metrics/segmentation.js';

const u8 = (xs: number[]): Uint8Array => Uint8Array.from(xs);

test('IoU of known masks, with ignore pixels and empty masks', () => {
  // pred 1 1 0 0 ; gt 1 0 1 0 -> I = 1, U = 3
  assert.deepEqual(binaryIntersectionUnion(u8([1, 1, 0, 0]), u8([1, 0, 1, 0])), { intersection: 1, union: 3 });
  assert.equal(iou(binaryIntersectionUnion(u8([1, 1, 0, 0]), u8([1, 0, 1, 0]))), 1 / 3);
  // the pixel whose gt is 255 is skipped: pred 1 1 0 0 ; gt 1 255 1 0 -> I = 1, U = 2
  assert.deepEqual(binaryIntersectionUnion(u8([1, 1, 0, 0]), u8([1, 255, 1, 0]), 1, 255), { intersection: 1, union: 2 });
  // both empty: union 0 -> 1 by convention (or the value asked for)
  assert.equal(iou(binaryIntersectionUnion(u8([0, 0]), u8([0, 0]))), 1);
  assert.equal(iou(binaryIntersectionUnion(u8([0, 0]), u8([0, 0])), 0), 0);
  // empty prediction of a non-empty object
  assert.equal(iou(binaryIntersectionUnion(u8([0, 0, 0]), u8([1, 1, 0]))), 0);
  assert.equal(pixelAccuracy(u8([1, 1, 0, 0]), u8([1, 255, 1, 0]), 1, 255), 2 / 3);
});

test('HSNet few-shot accumulator: class-wise sums, mIoU and FB-IoU by hand', () => {
  const acc = new FewShotAccumulator();
  // class 3, episode 1: pred 1100 gt 1010 -> fg I1 U3; bg: pred0 = 0011 vs gt0 = 0101 -> I1 U3
  acc.add(3, u8([1, 1, 0, 0]), u8([1, 0, 1, 0]));
  // class 3, episode 2: perfect on 1100 -> fg I2 U2, bg I2 U2
  acc.add(3, u8([1, 1, 0, 0]), u8([1, 1, 0, 0]));
  // class 7: pred 0000 gt 1 255 0 0 -> fg I0 U1; bg: pred0 all 1 vs gt0 at (0 0 skip 1 1) -> I2 U3
  acc.add(7, u8([0, 0, 0, 0]), u8([1, 255, 0, 0]), 255);
  assert.equal(acc.classIoU(3), 3 / 5);
  assert.equal(acc.classIoU(7), 0);
  assert.equal(acc.meanIoU(), (3 / 5 + 0) / 2);
  // FB-IoU: fg = (1+2+0)/(3+2+1) = 0.5 ; bg = (1+2+2)/(3+2+3) = 5/8
  assert.equal(acc.fbIoU(), (0.5 + 5 / 8) / 2);
  // JSON round trip and merge are exact
  const b = FewShotAccumulator.fromJSON(JSON.parse(JSON.stringify(acc.toJSON())));
  const merged = new FewShotAccumulator();
  merged.merge(b); merged.merge(b);
  assert.equal(merged.episodes, 6);
  assert.equal(merged.meanIoU(), acc.meanIoU());
});

test('confusion accumulator: ImageNet-S mIoU conventions with ignore 1000', () => {
  const acc = new ConfusionAccumulator(3, 1000);
  // gt:   0 0 1 1 2 1000 ; pred: 0 1 1 1 0 2
  acc.add(Uint16Array.from([0, 1, 1, 1, 0, 2]), Uint16Array.from([0, 0, 1, 1, 2, 1000]));
  // class 0: T2 P2 TP1 -> 1/3 ; class 1: T2 P3 TP2 -> 2/3 ; class 2: T1 P0 TP0 -> 0
  const per = acc.perClassIoU();
  assert.ok(Math.abs(per[0] - 1 / 3) < 1e-12 && Math.abs(per[1] - 2 / 3) < 1e-12 && per[2] === 0);
  assert.ok(Math.abs(acc.meanIoU('all') - 1 / 3) < 1e-12);
  assert.equal(acc.pixelAccuracy(), 3 / 5);
  // absent classes: 'all' counts them as 0, 'present' skips them
  const b = new ConfusionAccumulator(4, 1000);
  b.add(Uint16Array.from([0, 1]), Uint16Array.from([0, 1]));
  assert.equal(b.meanIoU('present'), 1);
  assert.equal(b.meanIoU('all'), 0.5);
  assert.throws(() => b.add(Uint16Array.from([9]), Uint16Array.from([0])), /predicted label 9/);
});

test('overall IoU is cumulative I / cumulative U, mIoU the mean of per-sample IoUs', () => {
  const acc = new OverallIoUAccumulator();
  acc.add({ intersection: 1, union: 2 });
  acc.add({ intersection: 9, union: 10 });
  assert.equal(acc.overallIoU(), 10 / 12);
  assert.equal(acc.meanIoU(), (0.5 + 0.9) / 2);
});

test('co-segmentation Jaccard and precision average per image', () => {
  const r = cosegJaccardPrecision([u8([1, 1, 0, 0]), u8([0, 0, 0, 0])], [u8([1, 0, 0, 0]), u8([0, 0, 0, 0])]);
  // image 1: IoU 1/2, accuracy 3/4 ; image 2 (both empty): IoU 1, accuracy 1
  assert.equal(r.jaccard, 0.75);
  assert.equal(r.precision, 0.875);
});

test('HSNet mIoU over the fold classes: a class without episodes counts 0; empty gt and prediction give 0', () => {
  const acc = new FewShotAccumulator();
  // class 6: I = 3, U = 4 -> 0.75; class 7: one episode with empty gt and empty prediction -> I = U = 0 -> 0 / max(0, 1) = 0
  acc.addCounts(6, { intersection: 10, union: 12 }, { intersection: 3, union: 4 });
  acc.addCounts(7, { intersection: 16, union: 16 }, { intersection: 0, union: 0 });
  assert.equal(acc.classIoU(7), 0);
  assert.equal(acc.meanIoU(), (0.75 + 0) / 2); // classes with episodes
  // the fold's classes 6..10 (HSNet index_select over dataset.class_ids): 8, 9, 10 had no episode -> 0 each
  assert.equal(acc.meanIoU([6, 7, 8, 9, 10]), 0.75 / 5);
  // a class outside the list is left out
  assert.equal(acc.meanIoU([6]), 0.75);
});

test('RefCOCO per-expression IoU with empty gt and prediction: LAVT counts 0, DAVIS J counts 1', () => {
  const lavt = new OverallIoUAccumulator();
  lavt.add({ intersection: 2, union: 4 }, 0);
  lavt.add({ intersection: 0, union: 0 }, 0); // LAVT test.py: U == 0 -> this_iou = 0.0
  assert.equal(lavt.meanIoU(), 0.25);
  assert.equal(lavt.overallIoU(), 0.5);
});
