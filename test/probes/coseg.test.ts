import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cosegmentSet, runCosegProbe, type CosegImage } from '../../src/probes/coseg.js';
import { upsampleNearest } from '../../src/probes/grid.js';
import { Rng } from '../../src/util/random.js';
import { plantedGrid, randomUnit } from './planted.js';

const R = 10; const C = 10; const DIM = 32; const PX = 4;

/** n images sharing one object direction; each image has its own background direction. */
function imageSet(n: number, amp: number, seed: number): CosegImage[] {
  const rng = new Rng(seed);
  const objectDir = randomUnit(rng, DIM);
  return Array.from({ length: n }, () => {
    const bgDir = randomUnit(rng, DIM);
    const r0 = rng.int(4); const c0 = rng.int(4); const h = 3 + rng.int(4); const w = 3 + rng.int(4);
    const inside = (r: number, c: number): boolean => r >= r0 && r < r0 + h && c >= c0 && c < c0 + w;
    const features = plantedGrid(R, C, DIM, rng, amp, (r, c) => (inside(r, c) ? objectDir : bgDir));
    const tok = Uint8Array.from({ length: R * C }, (_, t) => (inside(Math.floor(t / C), t % C) ? 1 : 0));
    return { features, labels: { height: R * PX, width: C * PX, data: upsampleNearest(tok, R, C, R * PX, C * PX) } };
  });
}

const value = (r: { metrics: { metric: string; value: number }[] }, m: string): number => r.metrics.find((x) => x.metric === m)!.value;

test('a common object across an image set is co-segmented; per-image backgrounds are not', () => {
  const set = imageSet(6, 8, 1);
  const out = cosegmentSet(set, { seed: 3 });
  assert.ok(out.k >= 2, `k = ${out.k}`);
  const r = runCosegProbe([set, imageSet(6, 8, 2)], { seed: 3 });
  assert.ok(value(r, 'Jaccard') > 0.95, `Jaccard ${value(r, 'Jaccard')}`);
  assert.ok(value(r, 'precision') > 0.97, `precision ${value(r, 'precision')}`);
});

test('pure noise gives chance level (everything or nothing in one cluster)', () => {
  const r = runCosegProbe([imageSet(6, 0, 1), imageSet(6, 0, 2)], { seed: 3 });
  assert.ok(value(r, 'Jaccard') < 0.45, `noise Jaccard ${value(r, 'Jaccard')}`);
  assert.ok(value(r, 'precision') < 0.75, `noise precision ${value(r, 'precision')}`);
});

test('supplied saliency decides which common clusters count (Amir et al. voting)', () => {
  const set = imageSet(4, 8, 5);
  const tokenMask = (im: CosegImage): Float32Array => Float32Array.from({ length: R * C }, (_, t) => im.labels.data[Math.floor(t / C) * PX * C * PX + (t % C) * PX]);
  const onObject = set.map((im) => ({ ...im, saliency: { rows: R, cols: C, data: tokenMask(im) } }));
  const offObject = set.map((im) => ({ ...im, saliency: { rows: R, cols: C, data: tokenMask(im).map((v) => 1 - v) } }));
  const good = runCosegProbe([onObject], { seed: 3, saliency: 'supplied' });
  const vetoed = runCosegProbe([offObject], { seed: 3, saliency: 'supplied' });
  assert.ok(value(good, 'Jaccard') > 0.95, `salient object Jaccard ${value(good, 'Jaccard')}`);
  assert.ok(value(vetoed, 'Jaccard') < 0.05, `non-salient object Jaccard ${value(vetoed, 'Jaccard')}`);
  assert.throws(() => cosegmentSet(set, { saliency: 'supplied' }), /saliency grid/);
});
