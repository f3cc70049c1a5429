// The viewer's tap families are the store's LM families only: a store that also holds vision-tower taps and the
// projector (or encoder-baseline taps) must not list vision.0.out as a family the viewer would read as lm.<L>.vision.0.out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractFeatures } from '../../src/extract/extract.js';
import { ViewerSource } from '../../src/viewer/source.js';
import { tinyModelWithImages } from '../helpers/extract-cli.js';

test('tapFamilies: LM families with their layers; vision and projector taps of the same store are not families', { timeout: 60_000 }, async () => {
  const { model, images } = await tinyModelWithImages(2, 'viewer-source');
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-viewer-source-'));
  try {
    const store = join(dir, 'store');
    await extractFeatures({ model, images, out: store, taps: ['lm.{0,2}.attn.v', 'lm.1.attn.k', 'vision.0.out', 'vision.1.out', 'projector.out'], dtype: 'float32', views: ['base'] });
    const source = await ViewerSource.open(store);
    try {
      assert.deepEqual(source.tapFamilies(), [{ name: 'attn.v', layers: [0, 2] }, { name: 'attn.k', layers: [1] }]);
    } finally {
      source.store?.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
