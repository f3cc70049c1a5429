import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreWriter } from '../../src/store/writer.js';
import { FeatureStore } from '../../src/store/reader.js';
import { f16ToF32, f32ToF16 } from '../../src/tensor/tensor.js';
import { KvlensInputError, KvlensUsageError } from '../../src/util/errors.js';
import { D_HEAD, KV_HEADS, TAPS, expectedGrid, identity, imageId, record, tensors } from './synthetic.js';
import { storeFiles } from './store-files.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-store-'));
const N = 30;

function writeStore(dir: string, dtype: 'float16' | 'float32', n = N, opts: { maxShardBytes?: number; from?: number } = {}): void {
  const w = StoreWriter.open(dir, { identity: identity({ dtype }), maxShardBytes: opts.maxShardBytes ?? 20_000, kvlensVersion: '0.0.0-test' });
  for (let i = opts.from ?? 0; i < n; i++) if (!w.has(imageId(i))) w.add(imageId(i), record(i), tensors(i));
  w.close();
}

test('f32 store: every image, tap and view reads back exactly; per-head slices; iteration; listings', () => {
  const dir = tmp();
  writeStore(dir, 'float32');
  const fs = FeatureStore.open(dir);
  assert.equal(fs.images().length, N);
  assert.deepEqual(fs.images(), Array.from({ length: N }, (_, i) => imageId(i)));
  assert.ok(fs.manifests[0].shards.length >= 4, `expected several shards, got ${fs.manifests[0].shards.length}`);
  assert.deepEqual(fs.layers('attn.v'), [0, 1]);
  assert.deepEqual(fs.layers('attn.k'), [0]);
  assert.deepEqual(fs.tapDims('lm.0.attn.v'), { heads: KV_HEADS, headDim: D_HEAD, dim: KV_HEADS * D_HEAD });
  assert.deepEqual(fs.tapDims('lm.1.attn.v_proj'), { heads: KV_HEADS, headDim: D_HEAD, dim: KV_HEADS * D_HEAD });
  assert.deepEqual(fs.tapDims('lm.1.resid'), { heads: 1, headDim: 6, dim: 6 });
  let grids = 0;
  for (let i = 0; i < N; i++) {
    const info = fs.image(imageId(i));
    assert.deepEqual(info.originalSize, { width: 300 + i, height: 200 + 2 * i });
    for (const tap of TAPS) {
      for (const view of ['base', 'highres']) {
        const exp = expectedGrid(i, tap, view);
        if (!exp) {
          assert.equal(info.views[view], undefined);
          assert.throws(() => fs.read(imageId(i), tap, { view }), /has no view "highres"/);
          continue;
        }
        const g = fs.read(imageId(i), tap, { view });
        assert.deepEqual([g.rows, g.cols, g.dim], [exp.rows, exp.cols, exp.dim]);
        assert.deepEqual(g.data, exp.data, `${imageId(i)} ${tap} ${view}`);
        grids++;
      }
    }
  }
  assert.equal(grids, TAPS.length * (N + 20)); // 20 of 30 images have a highres view
  // Per-head: head h of image 7's lm.1.attn.v highres grid is D[h*dHead : (h+1)*dHead] of every cell.
  const full = expectedGrid(7, 'lm.1.attn.v', 'highres')!;
  for (let h = 0; h < KV_HEADS; h++) {
    const g = fs.read(imageId(7), 'lm.1.attn.v', { view: 'highres', head: h });
    assert.equal(g.dim, D_HEAD);
    const exp = new Float32Array(full.rows * full.cols * D_HEAD);
    for (let c = 0; c < full.rows * full.cols; c++) for (let d = 0; d < D_HEAD; d++) exp[c * D_HEAD + d] = full.data[c * full.dim + h * D_HEAD + d];
    assert.deepEqual(g.data, exp);
  }
  assert.throws(() => fs.read(imageId(7), 'lm.1.attn.v', { head: 2 }), /head 2 is outside 0..1/);
  assert.throws(() => fs.read(imageId(7), 'lm.5.attn.v'), /not in this store/);
  assert.throws(() => fs.read('nope', 'lm.1.attn.v'), /"nope" is not in the store/);
  const seen = [...fs.iterate('lm.0.attn.k', { view: 'base' })];
  assert.equal(seen.length, N);
  seen.forEach(({ imageId: id, grid }, i) => {
    assert.equal(id, imageId(i));
    assert.deepEqual(grid.data, expectedGrid(i, 'lm.0.attn.k', 'base')!.data);
  });
  assert.deepEqual(fs.verify({ hashes: true }), []);
  fs.close();
});

test('f16 store: values equal f32ToF16 of the input exactly; 16-bit rounding actually happened', () => {
  const dir = tmp();
  writeStore(dir, 'float16');
  const fs = FeatureStore.open(dir);
  assert.equal(fs.dtype, 'float16');
  let changed = 0;
  for (let i = 0; i < N; i++) {
    for (const tap of TAPS) {
      for (const view of ['base', 'highres']) {
        const exp = expectedGrid(i, tap, view);
        if (!exp) continue;
        const got = fs.read(imageId(i), tap, { view }).data;
        const want = f16ToF32(f32ToF16(exp.data));
        assert.deepEqual(got, want, `${imageId(i)} ${tap} ${view}`);
        for (let k = 0; k < want.length; k++) if (want[k] !== exp.data[k]) changed++;
      }
    }
  }
  assert.ok(changed > 1000, `f16 rounding should change most values, changed ${changed}`);
  fs.close();
});

test('resume: reopening skips finalised images, and the result equals one uninterrupted run byte for byte', () => {
  const a = tmp();
  writeStore(a, 'float16');
  const b = tmp();
  writeStore(b, 'float16', 17);
  const w = StoreWriter.open(b, { identity: identity({ dtype: 'float16' }), maxShardBytes: 20_000, kvlensVersion: '0.0.0-test' });
  assert.equal(w.storedImages, 17);
  assert.ok(w.has(imageId(16)) && !w.has(imageId(17)));
  assert.throws(() => w.add(imageId(3), record(3), tensors(3)), (e: unknown) => e instanceof KvlensUsageError && /already in the store/.test(e.message));
  w.close();
  // A partial last shard was finalised at 17 images; writing on changes shard boundaries, so compare with a store
  // written 0..16 then 17..29 in the same way.
  writeStore(b, 'float16', N);
  const c = tmp();
  writeStore(c, 'float16', 17);
  writeStore(c, 'float16', N);
  assert.deepEqual(storeFiles(b), storeFiles(c));
  assert.notDeepEqual(storeFiles(a).get('manifest.json'), storeFiles(b).get('manifest.json'));
  assert.equal(FeatureStore.open(b).images().length, N);
  assert.equal(existsSync(join(b, '.lock')), false);
});

test('one writer per store: a second open in this process is refused until the first closes; run log stays outside', () => {
  const dir = tmp();
  const log = join(tmp(), 'run.jsonl');
  const w = StoreWriter.open(dir, { identity: identity(), maxShardBytes: 20_000, kvlensVersion: '0.0.0-test', runLogPath: log });
  assert.throws(() => StoreWriter.open(dir, { identity: identity(), maxShardBytes: 20_000, kvlensVersion: '0.0.0-test' }), /already has the store open/);
  for (let i = 0; i < 12; i++) w.add(imageId(i), record(i), tensors(i));
  w.close();
  const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, FeatureStore.open(dir).manifests[0].shards.length);
  assert.equal(lines.reduce((a, l) => a + l.images, 0), 12);
  StoreWriter.open(dir, { identity: identity(), maxShardBytes: 20_000, kvlensVersion: '0.0.0-test' }).close();
});

test('refuses a different model, prompt, prefix, taps, dtype or processor, naming the field', () => {
  const dir = tmp();
  writeStore(dir, 'float16', 4);
  const base = identity({ dtype: 'float16' });
  const cases: Array<[string, Partial<typeof base>]> = [
    ['model.configSha256', { model: { ...base.model, configSha256: 'b'.repeat(64) } }],
    ['model.path', { model: { ...base.model, path: '/models/other' } }],
    ['prompt.template', { prompt: { ...base.prompt, template: 'USER: <image>' } }],
    ['prompt.prefix', { prompt: { ...base.prompt, prefix: 'a photo of a dog. ' } }],
    ['taps', { taps: ['lm.embed', 'lm.0.attn.k'] }],
    ['dtype', { dtype: 'float32' }],
    ['processor', { processor: { ...base.processor, imageSize: 336 } }],
  ];
  for (const [field, over] of cases) {
    assert.throws(
      () => StoreWriter.open(dir, { identity: { ...base, ...over }, maxShardBytes: 20_000, kvlensVersion: '0.0.0-test' }),
      (e: unknown) => e instanceof KvlensInputError && e.message.includes(`${field} differs`) && e.message.includes('manifest.json'),
      field,
    );
  }
  assert.throws(() => StoreWriter.open(dir, { identity: base, maxShardBytes: 20_000, kvlensVersion: '9.9.9' }), /kvlensVersion differs/);
  assert.throws(() => StoreWriter.open(dir, { identity: base, maxShardBytes: 30_000, kvlensVersion: '0.0.0-test' }), /sharding differs/);
  assert.throws(() => StoreWriter.open(dir, { identity: base, selection: { index: 1, count: 2 }, maxShardBytes: 20_000, kvlensVersion: '0.0.0-test' }), /selection differs: 0\/1 vs 1\/2/);
  // Key order of processor settings does not matter (canonical JSON).
  const reordered = { resample: 'bicubic', imageSize: 384, gridPinpoints: [[384, 768]] };
  StoreWriter.open(dir, { identity: { ...base, processor: reordered }, maxShardBytes: 20_000, kvlensVersion: '0.0.0-test' }).close();
  assert.equal(FeatureStore.open(dir).images().length, 4);
});

test('bad adds are refused before anything is written', () => {
  const dir = tmp();
  const w = StoreWriter.open(dir, { identity: identity(), kvlensVersion: '0.0.0-test' });
  const t = tensors(0);
  const missing = new Map(t);
  missing.delete('lm.1.resid');
  assert.throws(() => w.add(imageId(0), record(0), missing), /tap "lm.1.resid" is missing/);
  const badPos = { ...record(0), views: { base: { rows: 3, cols: 3, positions: [0, 1, 2, 3, 4, 5, 6, 7, 999] } } };
  assert.throws(() => w.add(imageId(0), badPos, t), /position 999 \(cell 8\) is outside/);
  const badView = { ...record(0), views: { tiles: { rows: 1, cols: 1, positions: [0] } } };
  assert.throws(() => w.add(imageId(0), badView, t), /views \[tiles\] are not among/);
  const badShape = new Map(t).set('lm.0.attn.v', { shape: [1, 2, 5], data: new Float32Array(10) });
  assert.throws(() => w.add(imageId(0), record(0), badShape), /expected \[1, kvHead, pos, dHead\]/);
  assert.throws(() => StoreWriter.open(tmp(), { identity: identity({ taps: ['lm.0.attn.probs'] }) }), /cannot be stored/);
  w.add(imageId(0), record(0), t);
  w.close();
  assert.deepEqual(FeatureStore.open(dir).images(), [imageId(0)]);
});

test('disk full while streaming or finalising: temp files removed, store stays valid, a rerun completes it', () => {
  for (const which of ['data', 'final'] as const) {
    const dir = tmp();
    writeStore(dir, 'float32', 10, { maxShardBytes: 20_000 });
    const before = FeatureStore.open(dir);
    const stored = before.images().length;
    const shards = before.manifests[0].shards.length;
    before.close();
    // The next shard's temp file is redirected to /dev/full, which fails every write with ENOSPC.
    const w = StoreWriter.open(dir, { identity: identity({ dtype: 'float32' }), maxShardBytes: 20_000, kvlensVersion: '0.0.0-test' });
    const name = which === 'data' ? `.shard-${String(shards).padStart(5, '0')}.safetensors.data.tmp` : `.shard-${String(shards).padStart(5, '0')}.safetensors.tmp`;
    symlinkSync('/dev/full', join(dir, 'shards', name));
    assert.throws(() => {
      for (let i = 10; i < 20; i++) w.add(imageId(i), record(i), tensors(i));
      w.close();
    }, (e: unknown) => e instanceof KvlensInputError && /disk full/.test(e.message) && e.message.includes(name), which);
    assert.deepEqual(readdirSync(join(dir, 'shards')).filter((f) => f.startsWith('.')), [], `${which}: temp files left`);
    assert.equal(existsSync(join(dir, '.lock')), false);
    assert.throws(() => w.add(imageId(19), record(19), tensors(19)), /failed earlier/);
    const after = FeatureStore.open(dir);
    assert.equal(after.images().length, stored);
    assert.deepEqual(after.verify({ hashes: true }), []);
    writeStore(dir, 'float32', 20, { maxShardBytes: 20_000 });
    const ref = tmp();
    writeStore(ref, 'float32', 10, { maxShardBytes: 20_000 });
    writeStore(ref, 'float32', 20, { maxShardBytes: 20_000 });
    assert.deepEqual(storeFiles(dir), storeFiles(ref), which);
  }
});

test('unreadable or damaged shard files are named', () => {
  const dir = tmp();
  writeStore(dir, 'float32', 12);
  const fs = FeatureStore.open(dir);
  const file = fs.image(imageId(11)).shardFile;
  rmSync(file);
  assert.throws(() => fs.read(imageId(11), 'lm.0.attn.v'), (e: unknown) => e instanceof KvlensInputError && e.message.includes(file));
  const problems = fs.verify();
  assert.equal(problems.length, 1);
  assert.ok(problems[0].includes(file), problems[0]);
  assert.throws(() => StoreWriter.open(dir, { identity: identity(), maxShardBytes: 20_000, kvlensVersion: '0.0.0-test' }), /missing; the store is damaged/);
  assert.throws(() => FeatureStore.open(join(dir, 'shards')), /not a kvlens feature store/);
});
