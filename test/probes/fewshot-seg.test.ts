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

test('fold results average into the Pascal-5i headline numbers (unweighted mean of the fold mIoUs), folds kept', async () => {
  const { meanOverFolds } = await import('../../src/probes/fewshot-seg.js');
  const fold = (m: number, f: number, n: number, cls: number) => ({ task: 'pascal5i-fewshot', metrics: [{ metric: 'mIoU', value: m, n }, { metric: 'FB-IoU', value: f, n }, { metric: `IoU.class${cls}`, value: m, n }], protocol: { shots: 5 } });
  const r = meanOverFolds([{ fold: 0, result: fold(0.5, 0.7, 10, 1) }, { fold: 1, result: fold(0.7, 0.9, 30, 6) }]);
  const m = (name: string) => r.metrics.find((x) => x.metric === name);
  assert.ok(Math.abs(m('mIoU')!.value - 0.6) < 1e-12, 'not episode-weighted (that would be 0.65)');
  assert.ok(Math.abs(m('FB-IoU')!.value - 0.8) < 1e-12);
  assert.equal(m('mIoU')!.n, 40);
  assert.deepEqual([m('mIoU.fold0')!.value, m('mIoU.fold1')!.value, m('IoU.class6')!.value], [0.5, 0.7, 0.7]);
  assert.deepEqual(r.protocol.folds, [0, 1]);
  // one fold: its own result
  assert.equal(meanOverFolds([{ fold: 2, result: fold(0.4, 0.6, 5, 11) }]).metrics[0].value, 0.4);
});

test('runFewShotFolds runs each fold on its own episodes and averages', async () => {
  const { runFewShotFolds } = await import('../../src/probes/fewshot-seg.js');
  const a = spec(0.3);
  const items = syntheticSegItems(a);
  const load = syntheticSegLoader(a);
  const single = await runFewShotProbe(items, load, { episodes: 6, seed: 1 });
  const both = await runFewShotFolds([{ fold: 0, items }, { fold: 1, items }], load, { episodes: 6, seed: 1 });
  const v = (r: typeof single, k: string) => r.metrics.find((x) => x.metric === k)!.value;
  assert.equal(v(both, 'mIoU'), v(single, 'mIoU'));
  assert.equal(v(both, 'mIoU.fold1'), v(single, 'mIoU'));
  assert.equal(both.metrics.find((x) => x.metric === 'mIoU')!.n, 12);
});
