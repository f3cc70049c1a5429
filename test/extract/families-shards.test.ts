// Shards, resume and --on-error through the one extractor for the families that had no batching before
// (LLaVA-NeXT, Qwen2.5-VL): two shards with a broken image skipped, a rerun of a shard adds nothing, and the merged
// shards hold exactly what one unsharded batched run holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractFeatures } from '../../src/extract/extract.js';
import { FeatureStore } from '../../src/store/reader.js';
import { mergeStores } from '../../src/store/merge.js';
import { tapViews } from '../../src/store/gather.js';
import { writeLlavaNextCheckpoint } from '../../src/models/synthetic/llava-next.js';
import { writeQwen2VlCheckpoint, TINY_QWEN2_5_VL } from '../../src/models/synthetic/qwen2-vl.js';
import { writeImages } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-fam-shards-'));

for (const fam of [
  { name: 'llava_next', write: (d: string) => writeLlavaNextCheckpoint(d) },
  { name: 'qwen2_5_vl', write: (d: string) => writeQwen2VlCheckpoint(d, TINY_QWEN2_5_VL) },
]) {
  test(`${fam.name}: shards with a skipped broken image, resume, merge = one unsharded batched run`, { timeout: 180_000 }, async () => {
    const model = fam.write(join(tmp(), 'model'));
    const images = join(tmp(), 'images');
    await writeImages(images, 4);
    writeFileSync(join(images, 'img-001b.png'), Buffer.from('this is not a png'));
    const base = { model, images, dtype: 'float32' as const, onError: 'skip' as const, taps: ['lm.{0,2}.attn.v', 'image.packed', 'vision.0.out'] };
    const s0 = await extractFeatures({ ...base, out: join(tmp(), 's0'), shard: '0/2' });
    const s1 = await extractFeatures({ ...base, out: join(tmp(), 's1'), shard: '1/2' });
    assert.equal(s0.added + s1.added, 4);
    assert.deepEqual([...s0.skipped, ...s1.skipped].map((s) => s.id), ['img-001b.png']);
    const again = await extractFeatures({ ...base, out: s0.store, shard: '0/2' });
    assert.deepEqual([again.added, again.alreadyStored], [0, s0.added]);
    const merged = join(tmp(), 'merged');
    // the skipped image leaves shard 1 incomplete: merge says so unless partial is allowed
    assert.throws(() => mergeStores(join(tmp(), 'refused'), [s0.store, s1.store]), /incomplete input/);
    mergeStores(merged, [s0.store, s1.store], { allowPartial: true });
    const whole = await extractFeatures({ ...base, out: join(tmp(), 'whole'), batchSize: 3 });
    assert.equal(whole.added, 4);
    const a = FeatureStore.open(merged);
    const b = FeatureStore.open(whole.store);
    try {
      assert.deepEqual(a.images().sort(), b.images().sort());
      for (const id of b.images()) {
        for (const tap of b.identity.taps) {
          for (const view of tapViews(tap, b.views)) {
            const x = a.read(id, tap, { view }).data;
            const y = b.read(id, tap, { view }).data;
            let d = 0;
            for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
            assert.ok(d < 1e-5, `${id} ${tap} ${view}: ${d}`);
          }
        }
      }
    } finally {
      a.close();
      b.close();
    }
  });
}
