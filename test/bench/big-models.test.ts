import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extrapolate } from '../../bench/big-models.js';

test('extrapolate: per-layer cost and peak from a 1-layer and a 3-layer run, scaled to 28 layers', () => {
  // 1 layer: 10 s, 3 layers: best 16 s -> 3 s/layer, rest 7 s; peak 5 GiB -> 8 GiB: 1.5 GiB/layer.
  const G = 2 ** 30;
  const e = extrapolate({ lmLayers: 1, forwardSeconds: [11, 10], peakRssBytes: 5 * G }, { lmLayers: 3, forwardSeconds: [16, 17], peakRssBytes: 8 * G }, 28);
  assert.equal(e.perLayerSeconds, 3);
  assert.equal(e.restSeconds, 7);
  assert.equal(e.oneLayerAt, 14);
  assert.equal(e.oneLayerSeconds, 7 + 15 * 3);
  assert.equal(e.allLayersSeconds, 7 + 28 * 3);
  assert.equal(e.perLayerPeakBytes, 1.5 * G);
  assert.equal(e.peakBytes, 5 * G + 27 * 1.5 * G);
});

test('extrapolate: noise making the K-layer run faster clamps the per-layer cost at zero; equal layer counts are refused', () => {
  const e = extrapolate({ lmLayers: 1, forwardSeconds: [5], peakRssBytes: 100 }, { lmLayers: 2, forwardSeconds: [4.5], peakRssBytes: 90 }, 32);
  assert.equal(e.perLayerSeconds, 0);
  assert.equal(e.allLayersSeconds, 5);
  assert.equal(e.peakBytes, 100);
  assert.throws(() => extrapolate({ lmLayers: 2, forwardSeconds: [1], peakRssBytes: 1 }, { lmLayers: 2, forwardSeconds: [2], peakRssBytes: 2 }, 28), /two layer counts/);
});
