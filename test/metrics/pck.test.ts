import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PckAccumulator, pckCorrect, pckThreshold } from '../../src/metrics/pck.js';

test('PCK of known displacements against alpha * max(bbox w, h)', () => {
  const thr = pckThreshold([10, 20, 110, 70], 0.1); // w 100, h 50 -> 10
  assert.equal(thr, 10);
  const gt = [{ x: 0, y: 0 }, { x: 50, y: 50 }, { x: 100, y: 0 }];
  // displacements: 6-8-10 triangle (exactly 10: correct, <=), 10.05, 3
  const pred = [{ x: 6, y: 8 }, { x: 60.05, y: 50 }, { x: 100, y: 3 }];
  assert.deepEqual(pckCorrect(pred, gt, thr), [true, false, true]);
  const acc = new PckAccumulator();
  acc.add([true, false, true]);
  acc.add([true]);
  acc.add([]); // a pair without keypoints adds nothing
  assert.equal(acc.perPoint(), 3 / 4);
  assert.equal(acc.perImage(), (2 / 3 + 1) / 2);
  assert.ok(Number.isNaN(new PckAccumulator().perPoint()));
});
