import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extrapolate } from '../../bench/big-models.js';

const G = 2 ** 30;

test('extrapolate: per-layer time from the K-layer LM alone, rest from the 1-layer forward, peak from the RSS increment', () => {
  // LM alone with 3 layers: best 9 s -> 3 s/layer; 1-layer forward best 10 s -> rest 7 s; peak 5 -> 8 GiB: 1.5 GiB/layer.
  const e = extrapolate(
    { lmLayers: 1, forwardSeconds: [11, 10], lmSeconds: [3.5], peakRssBytes: 5 * G },
    { lmLayers: 3, forwardSeconds: [16, 17], lmSeconds: [9.5, 9], peakRssBytes: 8 * G },
    28,
  );
  assert.equal(e.perLayerSeconds, 3);
  assert.equal(e.restSeconds, 7);
  assert.equal(e.oneLayerAt, 14);
  assert.equal(e.oneLayerSeconds, 7 + 15 * 3);
  assert.equal(e.allLayersSeconds, 7 + 28 * 3);
  assert.equal(e.perLayerPeakBytes, 1.5 * G);
  assert.equal(e.peakBytes, 5 * G + 27 * 1.5 * G);
});

test('extrapolate: a smaller K-layer peak clamps the increment at zero; equal layer counts are refused', () => {
  const e = extrapolate({ lmLayers: 1, forwardSeconds: [5], lmSeconds: [1], peakRssBytes: 100 }, { lmLayers: 2, forwardSeconds: [6], lmSeconds: [2], peakRssBytes: 90 }, 32);
  assert.equal(e.perLayerSeconds, 1);
  assert.equal(e.allLayersSeconds, 4 + 32);
  assert.equal(e.peakBytes, 100);
  assert.throws(() => extrapolate({ lmLayers: 2, forwardSeconds: [1], lmSeconds: [1], peakRssBytes: 1 }, { lmLayers: 2, forwardSeconds: [2], lmSeconds: [1], peakRssBytes: 2 }, 28), /two layer counts/);
});
