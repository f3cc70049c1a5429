import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestLayers, runLayerSweep, type LayerSweep } from '../../src/probes/layer-runner.js';
import { runJobs } from '../../src/probes/parallel.js';
import { KvlensInputError } from '../../src/util/errors.js';

const sweep: LayerSweep = {
  model: 'synthetic',
  seed: 3,
  taps: [0, 1, 2, 3].map((l) => ({ tap: `lm.${l}.attn.v`, layer: l })),
  job: (_tap, layer) => ({ module: new URL('./layer-job-fixture.js', import.meta.url).href, fn: 'syntheticLayerProbe', args: { layer, seed: 3 } }),
};

test('a layer sweep gives identical rows on 1 and 2 threads, in layer order, tagged', async () => {
  const serial = await runLayerSweep(sweep, 1);
  const parallel = await runLayerSweep(sweep, 2);
  assert.deepEqual(parallel.rows, serial.rows);
  const miou = serial.rows.filter((r) => r.metric === 'mIoU');
  assert.deepEqual(miou.map((r) => r.layer), [0, 1, 2, 3]);
  assert.deepEqual(miou.map((r) => r.tap), ['lm.0.attn.v', 'lm.1.attn.v', 'lm.2.attn.v', 'lm.3.attn.v']);
  assert.ok(miou.every((r) => r.model === 'synthetic' && r.seed === 3 && r.task === 'pascal5i-fewshot' && r.n === 6));
  // planted signal grows with the layer: layer 0 is noise, layer 3 is near perfect
  assert.ok(miou[0].value < 0.5 && miou[3].value > 0.85, miou.map((r) => r.value).join(', '));
  const best = bestLayers(serial.rows).find((b) => b.metric === 'mIoU')!;
  assert.ok(best.layer === 2 || best.layer === 3);
  assert.ok(serial.protocols['lm.0.attn.v']);
});

test('a failing job rejects with its name', async () => {
  await assert.rejects(runJobs([{ module: new URL('./layer-job-fixture.js', import.meta.url).href, fn: 'nope', args: {} }], 1), /no exported function nope/);
  await assert.rejects(runJobs([
    { module: new URL('./layer-job-fixture.js', import.meta.url).href, fn: 'nope', args: {} },
    { module: new URL('./layer-job-fixture.js', import.meta.url).href, fn: 'nope', args: {} },
  ], 2), /nope/);
});

test('bad input inside a worker stays a KvlensInputError on the main thread (exit 2, no stack trace)', async () => {
  const job = { module: new URL('./layer-job-fixture.js', import.meta.url).href, fn: 'badInputJob', args: {} };
  await assert.rejects(runJobs([job, job], 2), (e: Error) => e instanceof KvlensInputError && e.message === '/stores/x: view "nosuch" is not in the store (stored: base)');
});
