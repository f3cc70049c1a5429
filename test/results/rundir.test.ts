import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadRunDir, imageFileName, readMaskFile, readAttentionFile, RUN_FILES, writeRun } from '../../src/results/rundir.js';
import { probeRowsFromCsv, probeRowsToCsv } from '../../src/results/io.js';
import { KvlensInputError } from '../../src/util/errors.js';
import type { ProbeRow } from '../../src/results/schema.js';
import { tempRunDir, writeSyntheticRun } from './synthetic-run.js';

test('a synthetic run round-trips through the writers and loadRunDir', async () => {
  const dir = await tempRunDir();
  try {
    const run = await writeSyntheticRun(dir, { layers: 6, imageIds: ['n01440764/ILSVRC2012_val_1.JPEG'] });
    const loaded = await loadRunDir(dir);
    assert.deepEqual(loaded.manifest, run.manifest);
    assert.deepEqual(loaded.probes, run.probes);
    assert.deepEqual(loaded.keyVariance, run.keyVariance);
    assert.deepEqual(loaded.benchmarks, run.benchmarks);
    assert.deepEqual(loaded.prefix, run.prefix);
    assert.deepEqual(loaded.underutil, run.underutil);
    assert.equal(loaded.samples.length, 3);
    assert.deepEqual(loaded.missing, []);
    // The CSV copy holds the same rows as the JSON.
    const csv = await readFile(join(dir, RUN_FILES.probesCsv), 'utf8');
    assert.deepEqual(probeRowsFromCsv(csv, 'probes.csv').rows, run.probes);
    const mask = await readMaskFile(dir, 'n01440764/ILSVRC2012_val_1.JPEG');
    assert.equal(mask?.layers['5'].length, 12 * 12);
    assert.equal((await readAttentionFile(dir, 'n01440764/ILSVRC2012_val_1.JPEG'))?.tokens.length, 5);
    assert.equal(await readMaskFile(dir, 'absent'), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('missing optional files are listed, not fatal; probes.csv is read when probes.json is absent', async () => {
  const dir = await tempRunDir();
  try {
    await writeSyntheticRun(dir, { layers: 4, omit: [RUN_FILES.benchmarks, RUN_FILES.samplesDir, RUN_FILES.underutil] });
    await rm(join(dir, RUN_FILES.probesJson));
    const loaded = await loadRunDir(dir);
    assert.deepEqual(loaded.missing.sort(), [RUN_FILES.benchmarks, RUN_FILES.underutil, RUN_FILES.samplesDir].sort());
    assert.equal(loaded.benchmarks, undefined);
    assert.ok(loaded.probes && loaded.probes.length > 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('probe CSV: quoting, null layers and NaN values', () => {
  const rows: ProbeRow[] = [
    { task: 'ref,coco "testA"', model: 'm', tap: 'projector.out', layer: null, metric: 'mIoU', value: 0.25, n: 10, seed: 3 },
    { task: 'spair', model: 'm', tap: 'lm.3.attn.v', layer: 3, metric: 'PCK@0.1', value: -1.5e-7, n: 7, seed: 0 },
  ];
  const csv = probeRowsToCsv(rows) + 'spair,m,lm.4.attn.v,4,PCK@0.1,NaN,0,0\n';
  const back = probeRowsFromCsv(csv, 'x.csv');
  assert.deepEqual(back.rows, rows);
  assert.equal(back.skipped, 1);
  assert.throws(() => probeRowsFromCsv('task,model\nx,y\n', 'bad.csv'), /bad\.csv: CSV header lacks column\(s\) tap, layer/);
  assert.throws(() => probeRowsFromCsv(probeRowsToCsv(rows).replace(',10,3', ',ten,3'), 'b.csv'), /b\.csv line 2.*n/);
});

test('malformed files fail loudly, naming the file and the field; writers refuse invalid data', async () => {
  const dir = await tempRunDir();
  try {
    const run = await writeSyntheticRun(dir, { layers: 3 });
    const kvPath = join(dir, RUN_FILES.keyVariance);
    const kv = JSON.parse(await readFile(kvPath, 'utf8'));
    kv.layers[1].variance.pop();
    await writeFile(kvPath, JSON.stringify(kv));
    await assert.rejects(loadRunDir(dir), (e: unknown) => e instanceof KvlensInputError && e.message.includes(kvPath)
      && e.message.includes('layers.1.variance') && e.message.includes('expected grid rows*cols = 144'));
    // Writers validate before touching the disk.
    const bad = structuredClone(run.benchmarks);
    bad.conditions[0].pope!.splits[0].f1 = 1.7;
    await rm(join(dir, RUN_FILES.benchmarks));
    await assert.rejects(writeRun.benchmarks(dir, bad), /conditions\.0\.pope\.splits\.0\.f1/);
    assert.ok(!(await readdir(join(dir, 'results'))).some((n) => n.includes('benchmarks')));
    await assert.rejects(loadRunDir(join(dir, 'results')), /not a run directory: manifest\.json is missing/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('per-image file names cannot escape their folder', () => {
  assert.equal(imageFileName('a/b.jpg'), 'a%2Fb%2Ejpg.json');
  assert.equal(imageFileName('..'), '%2E%2E.json');
  assert.ok(!imageFileName('../../etc/passwd').includes('/'));
});
