import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listIdentity, resolveShard, selectShard, parseShardSpec } from '../../src/store/selection.js';
import { StoreWriter } from '../../src/store/writer.js';
import { FeatureStore } from '../../src/store/reader.js';
import { mergeStores } from '../../src/store/merge.js';
import { modelConfigSha256 } from '../../src/store/provenance.js';
import { main } from '../../src/cli/main.js';
import { KvlensInputError, KvlensUsageError } from '../../src/util/errors.js';
import { TAPS, expectedGrid, identity, imageId, record, tensors } from './synthetic.js';
import { storeFiles } from './store-files.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-merge-'));

test('resolveShard: --shard wins, then SLURM arrays (min/step offsets), then indexed jobs; bad values refused', () => {
  assert.deepEqual(resolveShard({}, {}), { index: 0, count: 1 });
  assert.deepEqual(resolveShard({ shard: 'auto' }, {}), { index: 0, count: 1 });
  // Not asked to shard: the scheduler's variables are not read (run/demo inside an array job take the whole list).
  assert.deepEqual(resolveShard({}, { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' }), { index: 0, count: 1 });
  assert.deepEqual(resolveShard({ shard: '2/5' }, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '3' }), { index: 2, count: 5 });
  assert.deepEqual(resolveShard({ shard: 'auto' }, { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' }), { index: 3, count: 4 });
  // sbatch --array=1-8: ids 1..8 map to shards 0..7
  assert.deepEqual(resolveShard({ shard: 'auto' }, { SLURM_ARRAY_TASK_ID: '8', SLURM_ARRAY_TASK_COUNT: '8', SLURM_ARRAY_TASK_MIN: '1' }), { index: 7, count: 8 });
  // sbatch --array=0-12:4: ids 0,4,8,12 map to shards 0..3
  assert.deepEqual(resolveShard({ shard: 'auto' }, { SLURM_ARRAY_TASK_ID: '8', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_STEP: '4' }), { index: 2, count: 4 });
  assert.deepEqual(resolveShard({ shard: 'auto' }, { JOB_COMPLETION_INDEX: '1', KVLENS_SHARD_COUNT: '3' }), { index: 1, count: 3 });
  assert.deepEqual(resolveShard({ shard: 'auto' }, { JOB_COMPLETION_INDEX: '0', JOB_COMPLETIONS: '2' }), { index: 0, count: 2 });
  assert.throws(() => resolveShard({ shard: 'auto' }, { SLURM_ARRAY_TASK_ID: '1' }), /SLURM_ARRAY_TASK_COUNT is not/);
  assert.throws(() => resolveShard({ shard: 'auto' }, { JOB_COMPLETION_INDEX: '1' }), /KVLENS_SHARD_COUNT/);
  assert.throws(() => resolveShard({ shard: 'auto' }, { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_COUNT: '4' }), /outside 0..3/);
  assert.throws(() => resolveShard({ shard: 'auto' }, { SLURM_ARRAY_TASK_ID: 'x', SLURM_ARRAY_TASK_COUNT: '4' }), /not a non-negative integer/);
  assert.throws(() => parseShardSpec('3'), KvlensUsageError);
  assert.throws(() => parseShardSpec('0/0'), /count must be >= 1/);
});

test('selectShard: contiguous blocks that partition the list in order, sizes differing by at most one', () => {
  const items = Array.from({ length: 23 }, (_, i) => i);
  for (const n of [1, 2, 3, 5, 23, 30]) {
    const parts = Array.from({ length: n }, (_, i) => selectShard(items, { index: i, count: n }));
    assert.deepEqual(parts.flat(), items, `n=${n}`);
    const sizes = parts.map((p) => p.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `n=${n}: ${sizes}`);
  }
  assert.deepEqual(selectShard(items, { index: 1, count: 3 }), [7, 8, 9, 10, 11, 12, 13, 14]);
});

function writeShardStore(root: string, sel: { index: number; count: number }, total: number, over = {}): void {
  const ids = selectShard(Array.from({ length: total }, (_, i) => i), sel);
  const list = listIdentity(Array.from({ length: total }, (_, i) => imageId(i)));
  const w = StoreWriter.open(root, { identity: identity({ dtype: 'float16', ...over }), selection: sel, list, maxShardBytes: 10_000, kvlensVersion: '0.0.0-test' });
  for (const i of ids) w.add(imageId(i), record(i), tensors(i));
  w.close();
}

test('merge: three shard stores become one store with every image; multi-root reading agrees; refusals', async () => {
  const d = tmp();
  const parts = [0, 1, 2].map((i) => join(d, `part${i}`));
  parts.forEach((p, i) => writeShardStore(p, { index: i, count: 3 }, 20));
  const out = join(d, 'merged');
  const r = mergeStores(out, parts);
  assert.equal(r.images, 20);
  assert.deepEqual(r.missing, []);
  const merged = FeatureStore.open(out);
  assert.deepEqual(merged.images(), Array.from({ length: 20 }, (_, i) => imageId(i)));
  assert.deepEqual(merged.verify({ hashes: true }), []);
  // The complete set holds the whole list: recorded as 0/1, like an unsharded run.
  assert.deepEqual(merged.manifests[0].selection, [{ index: 0, count: 1 }]);
  const multi = FeatureStore.open(parts);
  for (let i = 0; i < 20; i++) {
    for (const tap of TAPS) {
      const exp = expectedGrid(i, tap, 'base')!;
      const a = merged.read(imageId(i), tap).data;
      assert.deepEqual(a, multi.read(imageId(i), tap).data);
      assert.equal(a.length, exp.data.length);
      for (let k = 0; k < a.length; k++) assert.ok(Math.abs(a[k] - exp.data[k]) <= Math.abs(exp.data[k]) * 2 ** -11 + 2 ** -25, `${i} ${tap} ${k}`);
    }
  }
  // Shard files are copied byte for byte.
  const partFiles = parts.flatMap((p) => [...storeFiles(p)].filter(([k]) => k.startsWith('shards/')).map(([, v]) => v));
  const mergedFiles = [...storeFiles(out)].filter(([k]) => k.startsWith('shards/')).map(([, v]) => v);
  assert.equal(mergedFiles.length, partFiles.length);
  mergedFiles.forEach((b, k) => assert.ok(b.equals(partFiles[k])));

  // Missing parts are reported; overlapping and mismatched inputs are refused; the output must be new.
  assert.throws(() => mergeStores(join(d, 'partial'), [parts[0], parts[2]]), /incomplete set: shards 1\/3 .*\(7 of 20 images\)/);
  assert.equal(existsSync(join(d, 'partial')), false);
  assert.deepEqual(mergeStores(join(d, 'partial'), [parts[0], parts[2]], { allowPartial: true }).missing, ['1/3']);
  assert.throws(() => mergeStores(join(d, 'dup'), [parts[0], parts[0]]), /is also in|also held by another input/);
  assert.throws(() => mergeStores(out, parts), /not an empty directory/);
  const other = join(d, 'other');
  writeShardStore(other, { index: 1, count: 3 }, 20, { prompt: { template: identity().prompt.template, prefix: 'A photo. ' } });
  assert.throws(() => mergeStores(join(d, 'bad'), [parts[0], other]), (e: unknown) => e instanceof KvlensInputError && /prompt.prefix differs/.test(e.message) && e.message.includes(other));
  assert.throws(() => FeatureStore.open([parts[0], other]), /prompt.prefix differs/);
  assert.equal(existsSync(join(d, 'bad')), false);
  assert.deepEqual(readdirSync(d).filter((f) => f.startsWith('.')), []);
  // A store whose writer was killed (lock left behind) is not merged.
  writeFileSync(join(parts[1], '.lock'), 'somehost 12345\n');
  assert.throws(() => mergeStores(join(d, 'locked'), parts), /writer is running on this store or was killed/);
});

test('kvlens store info / merge from the CLI', async () => {
  const d = tmp();
  const parts = [0, 1].map((i) => join(d, `p${i}`));
  parts.forEach((p, i) => writeShardStore(p, { index: i, count: 2 }, 6));
  const logs: string[] = [];
  const errs: string[] = [];
  const origLog = console.log;
  const origErr = console.error;
  console.log = (...a: unknown[]) => { logs.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { errs.push(a.join(' ')); };
  try {
    assert.equal(await main(['store', 'merge', join(d, 'm'), ...parts]), 0);
    assert.equal(await main(['store', 'info', join(d, 'm'), '--verify', '--json']), 0);
    const info = JSON.parse(logs[logs.length - 1]);
    assert.equal(info.images, 6);
    assert.deepEqual(info.views, { base: 6, highres: 4 });
    assert.deepEqual(info.taps, ['lm.embed', 'lm.0.attn.k', 'lm.{0-1}.attn.v', 'lm.1.resid', 'lm.1.attn.v_proj']);
    assert.deepEqual(info.problems, []);
    assert.equal(await main(['store', 'info', parts[0]]), 0);
    assert.match(logs[logs.length - 1], /images\s+3 \(base: 3, highres: 2\)[\s\S]*MISSING 1\/2/);
    assert.equal(await main(['store', 'info', join(d, 'nowhere')]), 2);
    assert.match(errs[errs.length - 1], /nowhere.*not a kvlens feature store/);
  } finally {
    console.log = origLog;
    console.error = origErr;
  }
});

test('model config hash is the sha256 of config.json', () => {
  const d = tmp();
  mkdirSync(join(d, 'model'));
  writeFileSync(join(d, 'model', 'config.json'), 'abc');
  assert.equal(modelConfigSha256(join(d, 'model')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.throws(() => modelConfigSha256(join(d, 'none')), /cannot read the model config/);
});
