// The pixel extent of each token comes from the store: extraction records each view's extent (the fraction of the
// image its token boxes reach: 56 of 60 px for a 4 x 14-px grid on a 60-px tile), and a flow correspondence run maps
// keypoints to tokens and token centres back to pixels over it. A planted store whose tokens read only part of each
// image scores higher PCK with its recorded extent than the same store read as if the grid filled the image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProbeFlow } from '../../src/experiments/flow.js';
import { extractFeatures } from '../../src/extract/extract.js';
import { writeLlavaOnevisionCheckpoint, TINY_LLAVA_ONEVISION } from '../../src/models/synthetic/llava-onevision.js';
import { FeatureStore } from '../../src/store/index.js';
import { plantedSpairStore } from './planted.js';
import { writeImages } from '../extract/helpers.js';

const pck = (rows: { tap: string; metric: string; value: number }[]) => rows.find((r) => r.tap === 'lm.2.attn.v' && r.metric === 'PCK@0.1.point')!.value;

test('flow correspondence reads each token\'s pixel extent from the store (PCK differs from assuming the grid fills the image)', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-extent-'));
  try {
    const store = join(dir, 'store');
    await plantedSpairStore(join(dir, "data"), store, 8, 5, 0.8);
    const s = FeatureStore.open(store);
    const id = s.images()[0];
    assert.deepEqual(s.image(id).views.base.extent, { x: 0.8, y: 0.8 });
    assert.deepEqual(s.extent(id, 'lm.2.attn.v'), { x: 0.8, y: 0.8 });
    s.close();
    const run = () => runProbeFlow({ task: 'correspondence', store, data: join(dir, 'data'), taps: ['lm.2.attn.v'], alphas: [0.1], threads: 1 });
    const withExtent = pck((await run()).rows);
    // the same store as one written before extents were recorded: the grid is taken to fill each image
    const mf = join(store, 'manifest.json');
    const m = JSON.parse(readFileSync(mf, 'utf8')) as { images: { views: Record<string, { extent?: unknown }> }[] };
    for (const im of m.images) for (const v of Object.values(im.views)) delete v.extent;
    writeFileSync(mf, JSON.stringify(m));
    const old = FeatureStore.open(store);
    assert.equal(old.extent(id, 'lm.2.attn.v'), undefined, 'an old store still reads, without an extent');
    old.close();
    const fullTile = pck((await run()).rows);
    console.log(`planted PCK@0.1 with the recorded extent ${withExtent.toFixed(3)}, assuming the full image ${fullTile.toFixed(3)}`);
    assert.ok(withExtent > 0.85, `PCK with the extent ${withExtent}`);
    assert.ok(withExtent > fullTile + 0.2, `the extent matters: ${withExtent} vs ${fullTile}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('extraction records each view\'s pixel extent: 4 patches of 14 px on a 60-px tile read 56 / 60 of the image', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-extent-x-'));
  try {
    const model = writeLlavaOnevisionCheckpoint(join(dir, 'model'), { ...TINY_LLAVA_ONEVISION, vision: { ...TINY_LLAVA_ONEVISION.vision, image: 60 } });
    await writeImages(join(dir, 'images'), 2);
    const store = join(dir, 'store');
    await extractFeatures({ model, images: join(dir, 'images'), out: store, taps: ['values'], layers: '0', dtype: 'float32', views: ['base'] });
    const s = FeatureStore.open(store);
    try {
      for (const id of s.images()) {
        const e = s.image(id).views.base.extent!;
        assert.ok(Math.abs(e.x - 56 / 60) < 1e-9 && Math.abs(e.y - 56 / 60) < 1e-9, `${id}: ${JSON.stringify(e)}`);
      }
    } finally {
      s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
