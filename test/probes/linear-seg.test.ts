import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLinearSegProbe, type LabelledGrid } from '../../src/probes/linear-seg.js';
import { Rng } from '../../src/util/random.js';

/** Images of `classes` horizontal bands; token features = a class code (scaled by signal) + noise; 255 on the last row. */
function images(n: number, signal: number, seed: number): LabelledGrid[] {
  const rows = 6, cols = 8, dim = 16, h = 24, w = 32, classes = 3;
  const codes = new Rng(99); // the same class codes in every split
  const code = Array.from({ length: classes }, () => Float32Array.from({ length: dim }, () => codes.normal()));
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const cut = [1 + rng.int(2), 3 + rng.int(2)]; // band edges in token rows
    const cls = (r: number) => (r < cut[0] ? 0 : r < cut[1] ? 1 : 2);
    const data = new Float32Array(rows * cols * dim);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) for (let d = 0; d < dim; d++) data[(r * cols + c) * dim + d] = signal * code[cls(r)][d] + rng.normal();
    const labels = new Uint8Array(h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) labels[y * w + x] = y >= h - 2 ? 255 : cls(Math.floor((y * rows) / h));
    return { features: { rows, cols, dim, data }, labels: { height: h, width: w, data: labels } };
  });
}

test('linear segmentation probe: planted class codes give high mIoU, noise does not; ignore pixels are not scored', async () => {
  const good = await runLinearSegProbe(images(12, 3, 1), images(6, 3, 2), { numClasses: 3, classNames: ['road', 'car', 'sky'] });
  const noise = await runLinearSegProbe(images(12, 0, 1), images(6, 0, 2), { numClasses: 3 });
  const m = (r: typeof good, k: string) => r.metrics.find((x) => x.metric === k)!.value;
  assert.ok(m(good, 'mIoU') > 0.8, `planted mIoU ${m(good, 'mIoU')}`);
  assert.ok(m(noise, 'mIoU') < 0.6, `noise mIoU ${m(noise, 'mIoU')}`);
  assert.ok(good.metrics.some((x) => x.metric === 'IoU.car'), 'class names in the per-class metrics');
  assert.equal(good.protocol.trainImages, 12);
});

test('training tokens are capped by a seeded reservoir sample (same seed, same numbers)', async () => {
  const a = await runLinearSegProbe(images(12, 2, 1), images(4, 2, 2), { numClasses: 3, maxTrainTokens: 100, seed: 5 });
  const b = await runLinearSegProbe(images(12, 2, 1), images(4, 2, 2), { numClasses: 3, maxTrainTokens: 100, seed: 5 });
  assert.equal(a.protocol.trainTokens, 100);
  assert.deepEqual(a.metrics, b.metrics);
  await assert.rejects(runLinearSegProbe([], images(1, 1, 1), { numClasses: 3 }), /no training images/);
});
