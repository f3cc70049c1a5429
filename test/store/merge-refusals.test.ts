// Merge, info and identity refusals (issue 13): every case where a sharded run could silently lose or mix images.
// Each case names the shard and the field, exits 2 from the CLI (1 for partial/damaged data), and leaves no output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listIdentity, selectShard } from '../../src/store/selection.js';
import { StoreWriter } from '../../src/store/writer.js';
import { mergeStores } from '../../src/store/merge.js';
import { readManifest, type StoreIdentity } from '../../src/store/format.js';
import { modelIdentity, weightsIdentity } from '../../src/store/provenance.js';
import { writeSafetensors } from '../../src/tensor/safetensors.js';
import { main } from '../../src/cli/main.js';
import { identity, imageId, record, tensors } from './synthetic.js';
import { storeFiles } from './store-files.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-refuse-'));
const ids = (n: number) => Array.from({ length: n }, (_, i) => imageId(i));

/** Write shard `sel` of a list of `total` images (list recorded unless `list` says otherwise). */
function shardStore(root: string, sel: { index: number; count: number }, total: number, opts: { list?: string[]; id?: Partial<StoreIdentity>; perShard?: number } = {}): void {
  const all = opts.list ?? ids(total);
  const w = StoreWriter.open(root, {
    identity: identity({ dtype: 'float16', ...opts.id }), selection: sel, list: listIdentity(all), maxShardBytes: 6_000, maxImagesPerShard: opts.perShard ?? null, kvlensVersion: '0.0.0-test',
  });
  for (const id of selectShard(all, sel)) {
    const i = Number(id.slice(4, 8));
    w.add(id, record(i), tensors(i));
  }
  w.close();
}

/** Run the CLI capturing stdout/stderr. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  try {
    return { code: await main(args), out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test('merge refuses shards of different shard counts (and a gap between mixed counts), naming the input and field', async () => {
  const d = tmp();
  // 0/4, 1/4 of one run with 2/3 of another: 320-image style loss (some images in no input) must be refused.
  shardStore(join(d, 'a'), { index: 0, count: 4 }, 40);
  shardStore(join(d, 'b'), { index: 1, count: 4 }, 40);
  shardStore(join(d, 'c'), { index: 2, count: 3 }, 40);
  const r = await cli(['store', 'merge', join(d, 'm'), join(d, 'a'), join(d, 'b'), join(d, 'c')]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, new RegExp(`${join(d, 'c')}: cannot merge .*field "selection" has shard 2/3, .* is a shard of 4`));
  assert.equal(existsSync(join(d, 'm')), false);
  // 0/2 + 2/3 (the 34-of-40 gap): refused by merge; read together, --verify names the missing images and fails.
  shardStore(join(d, 'h'), { index: 0, count: 2 }, 40);
  assert.throws(() => mergeStores(join(d, 'm2'), [join(d, 'h'), join(d, 'c')]), /field "selection"/);
  const v = await cli(['store', 'info', join(d, 'h'), join(d, 'c'), '--verify']);
  assert.equal(v.code, 1, v.out);
  assert.match(v.out, /MISSING images 20-25 of 40/);
  assert.match(v.out, /partial: images 20-25 of 40/);
});

test('merge and resume refuse a changed image list: an image present from the start can never fall between shards', async () => {
  const d = tmp();
  const full = ids(20);
  const grown = [...full.slice(0, 5), imageId(90), ...full.slice(5)]; // one image inserted while the array ran
  shardStore(join(d, 's0'), { index: 0, count: 2 }, 20, { list: full });
  shardStore(join(d, 's1'), { index: 1, count: 2 }, 20, { list: grown });
  const r = await cli(['store', 'merge', join(d, 'm'), join(d, 's0'), join(d, 's1')]);
  assert.equal(r.code, 2);
  assert.match(r.err, /field "list" differs \(21 images, sha256 [0-9a-f]{12} vs 20 images/);
  assert.match(r.err, /s1: /);
  // The writer refuses to resume a shard store over another list.
  assert.throws(() => StoreWriter.open(join(d, 's0'), { identity: identity({ dtype: 'float16' }), selection: { index: 0, count: 2 }, list: listIdentity(grown), maxShardBytes: 6_000, kvlensVersion: '0.0.0-test' }),
    /the image list differs \(list: 20 images.* vs 21 images/);
});

test('a missing shard: merge exits 2; --allow-partial writes a store marked partial (exit 1); info --verify --hashes fails', async () => {
  const d = tmp();
  const parts = [0, 1, 2, 3].map((i) => join(d, `p${i}`));
  parts.forEach((p, i) => shardStore(p, { index: i, count: 4 }, 24));
  const some = [parts[0], parts[1], parts[3]];
  const refused = await cli(['store', 'merge', join(d, 'm'), ...some]);
  assert.equal(refused.code, 2);
  assert.match(refused.err, /incomplete set: shards 2\/4 of the run are not among the inputs \(6 of 24 images\)/);
  assert.equal(existsSync(join(d, 'm')), false);
  const partial = await cli(['store', 'merge', join(d, 'm'), ...some, '--allow-partial']);
  assert.equal(partial.code, 1);
  assert.match(partial.err, /PARTIAL: missing 2\/4/);
  const info = await cli(['store', 'info', join(d, 'm'), '--verify', '--hashes']);
  assert.equal(info.code, 1, info.out);
  assert.match(info.out, /MISSING 2\/4 \(partial\)/);
  assert.doesNotMatch(info.out, /verify\s+ok/);
  const json = await cli(['store', 'info', join(d, 'm'), '--verify', '--json']);
  assert.equal(JSON.parse(json.out).partial, true);
  // The complete set verifies clean.
  assert.equal((await cli(['store', 'merge', join(d, 'full'), ...parts])).code, 0);
  assert.equal((await cli(['store', 'info', join(d, 'full'), '--verify', '--hashes'])).code, 0);
});

test('merge orders inputs by shard index, not by name: store-10 after store-2, as one run', async () => {
  const d = tmp();
  const n = 11;
  const parts = Array.from({ length: n }, (_, i) => join(d, `store-${i}`));
  parts.forEach((p, i) => shardStore(p, { index: i, count: n }, 33));
  const globbed = [...parts].sort(); // store-0, store-1, store-10, store-2, ...
  assert.equal(globbed[2], join(d, 'store-10'));
  assert.equal((await cli(['store', 'merge', join(d, 'glob'), ...globbed])).code, 0);
  assert.equal((await cli(['store', 'merge', join(d, 'ordered'), ...parts])).code, 0);
  assert.deepEqual(readManifest(join(d, 'glob')).images.map((x) => x.id), ids(33));
  assert.deepEqual(storeFiles(join(d, 'glob')), storeFiles(join(d, 'ordered')));
  // and equals one unsharded run over the same list, image for image and tensor for tensor
  shardStore(join(d, 'single'), { index: 0, count: 1 }, 33);
  const single = readManifest(join(d, 'single'));
  const merged = readManifest(join(d, 'glob'));
  assert.deepEqual(merged.images.map((x) => x.id), single.images.map((x) => x.id));
  assert.deepEqual(merged.list, single.list);
  assert.deepEqual(merged.selection, [{ index: 0, count: 1 }]);
  // With one image per shard the shard boundaries agree too: the merge is byte-identical to the unsharded run.
  const one = Array.from({ length: 4 }, (_, i) => join(d, `one-${i}`));
  one.forEach((p, i) => shardStore(p, { index: i, count: 4 }, 10, { perShard: 1 }));
  shardStore(join(d, 'one-single'), { index: 0, count: 1 }, 10, { perShard: 1 });
  assert.equal((await cli(['store', 'merge', join(d, 'one-merged'), ...one.reverse()])).code, 0);
  assert.deepEqual(storeFiles(join(d, 'one-merged')), storeFiles(join(d, 'one-single')));
});

test('merge verifies each shard\'s sha256 before copying: a corrupt shard of the right size is refused', async () => {
  const d = tmp();
  shardStore(join(d, 'p0'), { index: 0, count: 2 }, 12);
  shardStore(join(d, 'p1'), { index: 1, count: 2 }, 12);
  const shard = join(d, 'p1', 'shards', 'shard-00000.safetensors');
  const bytes = readFileSync(shard);
  bytes[bytes.length - 3] ^= 0x40; // same size, one bit flipped in tensor data
  writeFileSync(shard, bytes);
  const r = await cli(['store', 'merge', join(d, 'm'), join(d, 'p0'), join(d, 'p1')]);
  assert.equal(r.code, 2);
  assert.ok(r.err.includes(`${shard}: shard content does not match its manifest`), r.err);
  assert.equal(existsSync(join(d, 'm')), false);
  assert.deepEqual(readdirSync(d).filter((f) => f.startsWith('.')), []);
});

test('plain store info notices a truncated or missing shard (exit 1) without --verify', async () => {
  const d = tmp();
  shardStore(join(d, 's'), { index: 0, count: 1 }, 12);
  assert.equal((await cli(['store', 'info', join(d, 's')])).code, 0);
  const shard = join(d, 's', 'shards', 'shard-00001.safetensors');
  truncateSync(shard, 100);
  const r = await cli(['store', 'info', join(d, 's')]);
  assert.equal(r.code, 1);
  assert.ok(r.out.includes(`${shard}: 100 bytes, the manifest says`), r.out);
});

test('--out on a directory with shard files but no manifest is refused and nothing is deleted', () => {
  const d = tmp();
  shardStore(join(d, 's'), { index: 0, count: 1 }, 12);
  const before = storeFiles(join(d, 's'));
  rmSync(join(d, 's', 'manifest.json')); // the manifest was lost
  writeFileSync(join(d, 's', 'shards', '.shard-00009.safetensors.tmp'), 'x');
  const open = () => StoreWriter.open(join(d, 's'), { identity: identity({ dtype: 'float16' }), list: listIdentity(ids(12)), maxShardBytes: 6_000, kvlensVersion: '0.0.0-test' });
  assert.throws(open, /no manifest\.json but shards\/ holds \d+ files \(\d+ shard files: shard-00000\.safetensors, .*refusing to write here/);
  const after = storeFiles(join(d, 's'));
  for (const [name, b] of before) if (name !== 'manifest.json') assert.ok(after.get(name)?.equals(b), `${name} must survive`);
  assert.ok(after.has('shards/.shard-00009.safetensors.tmp'));
  assert.equal(after.has('.lock'), false);
  // An empty directory (or one with an empty shards/) is a new store.
  mkdirSync(join(d, 'fresh', 'shards'), { recursive: true });
  StoreWriter.open(join(d, 'fresh'), { identity: identity(), kvlensVersion: '0.0.0-test' }).close();
});

test('store identity includes the weights: header hash by default, content hash on request; resume and merge refuse other weights', async () => {
  const d = tmp();
  const model = (name: string, value: number, shape = [2, 3]) => {
    const dir = join(d, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), '{"model_type":"tiny"}');
    const data = new Float32Array(shape[0] * shape[1]).fill(value);
    writeSafetensors(join(dir, 'model.safetensors'), { 'w.weight': { dtype: 'float32', shape, data } as never });
    return dir;
  };
  const a = model('a', 1);
  const sameHeader = model('b', 2); // same config, same header, other values
  const otherShape = model('c', 1, [3, 2]);
  const ia = modelIdentity(a);
  assert.equal(ia.weights.files, 1);
  assert.equal(ia.configSha256, modelIdentity(otherShape).configSha256);
  assert.notEqual(ia.weights.sha256, modelIdentity(otherShape).weights.sha256);
  assert.equal(ia.weights.sha256, modelIdentity(sameHeader).weights.sha256, 'header hash reads only headers');
  assert.notEqual(weightsIdentity(a, 'content').sha256, weightsIdentity(sameHeader, 'content').sha256);

  // A store over model a refuses to resume over model c (same path and config.json, other model.safetensors).
  const store = join(d, 'store');
  const idOf = (m: ReturnType<typeof modelIdentity>) => identity({ dtype: 'float16', model: { ...m, path: '/models/tiny' } });
  const w = StoreWriter.open(store, { identity: idOf(ia), kvlensVersion: '0.0.0-test' });
  w.add(imageId(0), record(0), tensors(0));
  w.close();
  assert.throws(() => StoreWriter.open(store, { identity: idOf(modelIdentity(otherShape)), kvlensVersion: '0.0.0-test' }), /model\.weights differs/);
  // Merge: shards over different weights are refused naming the field.
  shardStore(join(d, 'p0'), { index: 0, count: 2 }, 8, { id: { model: { ...ia, path: '/m' } } });
  shardStore(join(d, 'p1'), { index: 1, count: 2 }, 8, { id: { model: { ...modelIdentity(otherShape), path: '/m' } } });
  const r = await cli(['store', 'merge', join(d, 'm'), join(d, 'p0'), join(d, 'p1')]);
  assert.equal(r.code, 2);
  assert.match(r.err, /p1: cannot merge with .*p0: model\.weights differs/);
});

test('kvlens run and demo never shard: --shard is refused (exit 2) saying how to use an array instead', async () => {
  for (const args of [['run', 'exp.yaml', '--shard', '0/2'], ['demo', '--shard', 'auto']]) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, /does not shard: .*never reads SLURM_ARRAY_\* or JOB_COMPLETION_INDEX/);
  }
});
