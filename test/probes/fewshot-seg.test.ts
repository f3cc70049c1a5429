import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFewShotProbe, sampleEpisodes } from '../../src/probes/fewshot-seg.js';
import { runFewShotProbeParallel } from '../../src/probes/fewshot-parallel.js';
import { syntheticSegItems, syntheticSegLoader, type SyntheticSegSpec } from '../../src/probes/synthetic.js';

const spec = (signal: number): SyntheticSegSpec => ({ images: 40, rows: 12, cols: 12, dim: 48, height: 48, width: 48, numClasses: 4, signal, seed: 11, alignToTokens: true });
const metric = (r: { metrics: { metric: string; value: number }[] }, m: string): number => r.metrics.find((x) => x.metric === m)!.value;

test('episodes: fold list cycled in order, distinct same-class supports without the query, seeded', () => {
  const items = syntheticSegItems(spec(0));
  const a = sampleEpisodes(items, 50, 5, 3);
  assert.deepEqual(a, sampleEpisodes(items, 50, 5, 3));
  assert.notDeepEqual(a.map((e) => e.supports), sampleEpisodes(items, 50, 5, 4).map((e) => e.supports));
  for (const e of a) {
    assert.equal(e.query, items[e.index % items.length].imageId);
    assert.equal(new Set(e.supports).size, 5);
    assert.ok(!e.supports.includes(e.query));
    for (const s of e.supports) assert.equal(items[Number(s)].classId, e.classId);
  }
  assert.throws(() => sampleEpisodes(items, 1, 10, 0), /10 supports needed/);
});

test('planted foreground features: the linear probe reaches IoU near 1; pure noise stays at chance', async () => {
  const good = await runFewShotProbe(syntheticSegItems(spec(1)), syntheticSegLoader(spec(1)), { episodes: 12 });
  assert.ok(metric(good, 'mIoU') > 0.92, `planted mIoU ${metric(good, 'mIoU')}`);
  assert.ok(metric(good, 'FB-IoU') > 0.93, `planted FB-IoU ${metric(good, 'FB-IoU')}`);
  const noise = await runFewShotProbe(syntheticSegItems(spec(0)), syntheticSegLoader(spec(0)), { episodes: 12 });
  assert.ok(metric(noise, 'mIoU') < 0.45, `noise mIoU ${metric(noise, 'mIoU')}`);
  assert.ok(metric(noise, 'FB-IoU') < 0.6, `noise FB-IoU ${metric(noise, 'FB-IoU')}`);
  assert.equal(good.protocol.episodes, 12);
});

test('parallel chunks give exactly the serial numbers', async () => {
  const s = spec(0.3);
  const loader = { module: new URL('../../src/probes/synthetic.js', import.meta.url).href, fn: 'syntheticSegLoader', args: s };
  const serial = await runFewShotProbe(syntheticSegItems(s), syntheticSegLoader(s), { episodes: 8, seed: 2 });
  const par = await runFewShotProbeParallel(syntheticSegItems(s), loader, { episodes: 8, seed: 2 }, 2, 4);
  assert.deepEqual(par.metrics, serial.metrics);
});

test('fold results average into the Pascal-5i headline numbers', async () => {
  const { meanOverFolds } = await import('../../src/probes/fewshot-seg.js');
  const fold = (m: number, f: number) => ({ task: 'pascal5i-fewshot', metrics: [{ metric: 'mIoU', value: m, n: 10 }, { metric: 'FB-IoU', value: f, n: 10 }], protocol: { shots: 5 } });
  const r = meanOverFolds([fold(0.5, 0.7), fold(0.7, 0.9)]);
  assert.deepEqual(r.metrics, [{ metric: 'mIoU.meanOverFolds', value: 0.6, n: 20 }, { metric: 'FB-IoU.meanOverFolds', value: 0.8, n: 20 }]);
  assert.equal(r.protocol.folds, 2);
});
