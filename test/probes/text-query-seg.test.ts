import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foregroundStrength, runReferringSegProbe, runSemanticSegProbe, scoreTokens, type ReferringSample, type SemanticSegSample } from '../../src/probes/text-query-seg.js';
import { upsampleNearest } from '../../src/probes/grid.js';
import { Rng } from '../../src/util/random.js';
import { plantedGrid, randomUnit } from './planted.js';

const R = 8; const C = 8; const DIM = 32; const PX = 4;
const value = (r: { metrics: { metric: string; value: number }[] }, m: string): number => r.metrics.find((x) => x.metric === m)!.value;

/** Object tokens carry objectDir, others bgDir; returns features and the token mask. */
function scene(rng: Rng, amp: number, objectDir: Float32Array): { features: ReturnType<typeof plantedGrid>; tok: Uint8Array } {
  const bgDir = randomUnit(rng, DIM);
  const r0 = rng.int(4); const c0 = rng.int(4); const h = 2 + rng.int(3); const w = 2 + rng.int(3);
  const inside = (r: number, c: number): boolean => r >= r0 && r < r0 + h && c >= c0 && c < c0 + w;
  const features = plantedGrid(R, C, DIM, rng, amp, (r, c) => (inside(r, c) ? objectDir : bgDir));
  return { features, tok: Uint8Array.from({ length: R * C }, (_, t) => (inside(Math.floor(t / C), t % C) ? 1 : 0)) };
}

test('scores and mask rules by hand', () => {
  const grid = { rows: 1, cols: 3, dim: 2, data: Float32Array.from([1, 0, 0, 2, 3, 4]) };
  assert.deepEqual(Array.from(scoreTokens(grid, Float32Array.from([1, 1]), 'dot')), [1, 2, 7]);
  const cos = scoreTokens(grid, Float32Array.from([1, 0]), 'cosine');
  assert.ok(Math.abs(cos[2] - 0.6) < 1e-6);
  const mm = foregroundStrength(Float32Array.from([1, 2, 7]), { similarity: 'dot', maskRule: 'minmax', threshold: 0.5, fraction: 0.25 });
  assert.deepEqual(Array.from(mm.strength), [0, 1 / 6, 1].map(Math.fround));
  const top = foregroundStrength(Float32Array.from([1, 2, 7, 3]), { similarity: 'dot', maskRule: 'topFraction', threshold: 0.5, fraction: 0.5 });
  assert.deepEqual(Array.from(top.strength), [0, 0, 1, 1]);
  // a constant score map localises nothing
  assert.deepEqual(Array.from(foregroundStrength(Float32Array.from([2, 2]), { similarity: 'dot', maskRule: 'minmax', threshold: 0.5, fraction: 0.25 }).strength), [0, 0]);
});

test('referring segmentation recovers the token region aligned with the query; a random query does not', async () => {
  const rng = new Rng(4);
  const objectDir = randomUnit(rng, DIM);
  const samples: ReferringSample[] = [];
  for (let i = 0; i < 10; i++) {
    const s = scene(rng, 10, objectDir);
    samples.push({ features: s.features, labels: { height: R * PX, width: C * PX, data: upsampleNearest(s.tok, R, C, R * PX, C * PX) }, query: objectDir });
  }
  const good = await runReferringSegProbe(samples);
  assert.ok(value(good, 'mIoU') > 0.85 && value(good, 'oIoU') > 0.85, `mIoU ${value(good, 'mIoU')} oIoU ${value(good, 'oIoU')}`);
  const wrong = await runReferringSegProbe(samples.map((s) => ({ ...s, query: randomUnit(rng, DIM) })));
  assert.ok(value(wrong, 'mIoU') < 0.35, `random-query mIoU ${value(wrong, 'mIoU')}`);
});

test('ImageNet-S style semantic segmentation: class queries, background 0, ignore 1000', async () => {
  const rng = new Rng(8);
  const dirs = [randomUnit(rng, DIM), randomUnit(rng, DIM)];
  const make = (amp: number): SemanticSegSample[] => Array.from({ length: 8 }, (_, i) => {
    const cls = 1 + (i % 2);
    const s = scene(rng, amp, dirs[cls - 1]);
    const labels = Uint16Array.from(upsampleNearest(s.tok, R, C, R * PX, C * PX), (v) => v * cls);
    labels[0] = 1000; // an ignored pixel
    return { features: s.features, labels: { height: R * PX, width: C * PX, data: labels }, queries: [{ classId: cls, vector: dirs[cls - 1] }] };
  });
  const good = await runSemanticSegProbe(make(10), { numClasses: 2 });
  assert.ok(value(good, 'mIoU') > 0.85, `mIoU ${value(good, 'mIoU')}`);
  const noise = await runSemanticSegProbe(make(0), { numClasses: 2 });
  assert.ok(value(noise, 'mIoU') < 0.5, `noise mIoU ${value(noise, 'mIoU')}`);
});
