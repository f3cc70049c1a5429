// Manifest validation at open (issue 14): a tapDims entry whose heads x headDim disagrees with dim (headDim 16,000,048
// made head reads take 20 s and 1.8 GB and return NaN while verify said nothing) is refused naming the manifest and
// field, by the reader and by `kvlens store info --verify` (exit 2), in milliseconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listIdentity, missingParts } from '../../src/store/selection.js';
import { FeatureStore } from '../../src/store/reader.js';
import { StoreWriter } from '../../src/store/writer.js';
import { readManifest } from '../../src/store/format.js';
import { main } from '../../src/cli/main.js';
import { KvlensInputError } from '../../src/util/errors.js';
import { identity, imageId, record, tensors } from './synthetic.js';

function smallStore(): string {
  const root = join(mkdtempSync(join(tmpdir(), 'kvlens-manifest-')), 'store');
  const all = [imageId(0), imageId(1)];
  const w = StoreWriter.open(root, { identity: identity({ dtype: 'float16' }), selection: { index: 0, count: 1 }, list: listIdentity(all), kvlensVersion: '0.0.0-test' });
  for (const [i, id] of all.entries()) w.add(id, record(i), tensors(i));
  w.close();
  return root;
}

function patchManifest(root: string, patch: (m: Record<string, any>) => void): string {
  const path = join(root, 'manifest.json');
  const m = JSON.parse(readFileSync(path, 'utf8'));
  patch(m);
  writeFileSync(path, JSON.stringify(m));
  return path;
}

test('a manifest headDim of 16,000,048 is refused at open and by store info --verify', async () => {
  const root = smallStore();
  const path = patchManifest(root, (m) => { m.tapDims['lm.0.attn.k'].headDim = 16_000_048; });
  const t0 = performance.now();
  assert.throws(() => readManifest(root), (e: unknown) => e instanceof KvlensInputError && e.message.startsWith(path)
    && /field "tapDims\.lm\.0\.attn\.k": heads x headDim = 2 x 16000048 must equal dim = 8/.test(e.message));
  const errors: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => { errors.push(a.join(' ')); };
  try {
    assert.equal(await main(['store', 'info', root, '--verify']), 2);
  } finally {
    console.error = orig;
  }
  assert.match(errors.join('\n'), /headDim = 2 x 16000048/);
  assert.ok(performance.now() - t0 < 3000);
});

test('tapDims for a tap the store does not hold is refused', () => {
  const root = smallStore();
  patchManifest(root, (m) => { m.tapDims['lm.9.attn.q'] = { heads: 1, headDim: 2, dim: 2 }; });
  assert.throws(() => readManifest(root), /tapDims names tap "lm\.9\.attn\.q"/);
});

test('a selection count of 16,000,048 (fuzz case 18878: 21 s and 1.3 GB) is reported as one missing range in milliseconds', () => {
  const root = smallStore();
  patchManifest(root, (m) => { m.selection = [{ index: 0, count: 16_000_048 }]; });
  const t0 = performance.now();
  const store = FeatureStore.open(root);
  try {
    assert.deepEqual(store.missing(), ['1-16000047/16000048']);
    assert.match(store.verify().join('\n'), /partial: 1-16000047\/16000048 of the run is not in this store/);
  } finally {
    store.close();
  }
  assert.ok(performance.now() - t0 < 1000, `took ${performance.now() - t0} ms`);
});

test('missingParts lists short gaps shard by shard and a gap of more than 8 shards as one range', () => {
  assert.deepEqual(missingParts([{ index: 0, count: 20 }, { index: 5, count: 20 }]), ['1/20', '2/20', '3/20', '4/20', '6-19/20']);
  assert.deepEqual(missingParts([{ index: 2, count: 3 }, { index: 0, count: 3 }]), ['1/3']);
  assert.deepEqual(missingParts([{ index: 0, count: 10 }]), ['1-9/10']);
  assert.deepEqual(missingParts([{ index: 0, count: 9 }]), ['1/9', '2/9', '3/9', '4/9', '5/9', '6/9', '7/9', '8/9']);
  assert.deepEqual(missingParts([{ index: 0, count: 1 }]), []);
});
