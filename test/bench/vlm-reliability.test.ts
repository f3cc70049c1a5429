// The vlm bench's UNRELIABLE flag names its real reason: a quiet machine whose prefill beat the sustained MatMul
// ceiling (the reference loop slowed by its own fresh outputs) was reported as "machine loaded" (2026-12-04 runs at
// 1-min load average 1.16 on 2 cores).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unreliableReasons } from '../../bench/vlm.js';

const quiet = { cores: 2, loadAvgStart: [1.16, 1.28, 1.3], loadAvgEnd: [1.06, 1.23, 1.28] };

test('unreliableReasons: none for a quiet run under the ceiling', () => {
  assert.deepEqual(unreliableReasons(quiet, 0.93, 164, 186), []);
});

test('unreliableReasons: a ratio above 1.05 on a quiet machine blames the reference, not the load', () => {
  const r = unreliableReasons(quiet, 1.06, 164, 186);
  assert.equal(r.length, 1);
  assert.match(r[0], /prefill faster than the sustained ceiling/);
  assert.doesNotMatch(r.join(' '), /machine loaded/);
});

test('unreliableReasons: load above the core count and a sagging sustained ceiling are each named', () => {
  const r = unreliableReasons({ cores: 2, loadAvgStart: [2.4, 2, 2], loadAvgEnd: [1.5, 1.5, 1.5] }, 0.9, 120, 186);
  assert.equal(r.length, 2);
  assert.match(r[0], /machine loaded \(1-min load average 2\.40 on 2 cores\)/);
  assert.match(r[1], /sustained ceiling under 0\.7 of the best single run \(120 vs 186 GFLOP\/s\)/);
});
