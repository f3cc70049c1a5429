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

test('bigModelRows: one LM layer over the same-run sustained MatMul ceiling, per family; absent for older results', async () => {
  const { bigModelRows } = await import('../../bench/big-models.js');
  const { CEILING_GFLOP } = await import('../../bench/vlm.js');
  const child = (lmLayers: number, ceilingSeconds?: number[]) => ({
    lmLayers, tokens: { total: 100, image: 68, text: 32 }, loadSeconds: 1, visionSeconds: [1], forwardSeconds: [2 + lmLayers], lmSeconds: [lmLayers * 0.5],
    layerGflop: 10, peakRssBytes: G, loadAvg: [0, 0, 0], ...(ceilingSeconds ? { ceilingSeconds } : {}),
  });
  const result = (ceiling?: number[]) => {
    const runs = [child(1, ceiling), child(2, ceiling)];
    return { model: 'Qwen2.5-VL (tiny)', lmLayers: 4, visionLayers: 2, imageSide: 112, checkpointLmLayers: 2, checkpointBytes: G, writeSeconds: 1, runs, estimate: extrapolate(runs[0], runs[1], 4), underLoad: false };
  };
  // per layer 0.5 s -> 20 GFLOP/s; ceiling CEILING_GFLOP / 0.1 s (the best block)
  const row = bigModelRows(result([0.2, 0.1, 0.3])).find((r) => r.metric.startsWith('one LM layer / sustained MatMul ceiling'));
  const ratio = 20 / (CEILING_GFLOP / 0.1);
  assert.ok(row, 'the ratio row is printed');
  assert.equal(String(row!.value).split(' ')[0], ratio.toFixed(2));
  assert.equal(bigModelRows(result()).some((r) => r.metric.includes('MatMul ceiling')), false);
});
