// extractFeatures on the tiny LLaVA-NeXT, Qwen2.5-VL and Qwen2-VL models: the stored grids equal the model's own taps
// (a separate forward from the family's processor) at the token map's grid positions, for every layer's keys/values
// and the packed image features; Qwen2-VL families store one "highres" view of (H/28) x (W/28) merged tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractFeatures } from '../../src/extract/extract.js';
import { listImages } from '../../src/extract/sources.js';
import { FeatureStore } from '../../src/store/reader.js';
import { loadModel } from '../../src/models/index.js';
import { loadProcessor } from '../../src/preprocess/load.js';
import { smartResize } from '../../src/preprocess/qwen2vl-image.js';
import { loadImage } from '../../src/preprocess/image.js';
import { writeLlavaNextCheckpoint } from '../../src/models/synthetic/llava-next.js';
import { writeQwen2VlCheckpoint, TINY_QWEN2_5_VL, TINY_QWEN2_VL } from '../../src/models/synthetic/qwen2-vl.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { writeImages } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-extract-fam-'));

/** Token p's vector of a tap: head-major [1, H, S, d] -> heads concatenated; [1, S, D] -> row p. */
function tokenVector(t: Tensor, p: number): Float32Array {
  const data = t.data as Float32Array;
  if (t.shape.length === 4) {
    const [, H, S, d] = t.shape;
    const out = new Float32Array(H * d);
    for (let h = 0; h < H; h++) out.set(data.subarray((h * S + p) * d, (h * S + p + 1) * d), h * d);
    return out;
  }
  const D = t.shape[t.shape.length - 1];
  return data.subarray(p * D, (p + 1) * D);
}

const families = [
  { name: 'llava_next', write: (d: string) => writeLlavaNextCheckpoint(d), views: ['base', 'highres'] },
  { name: 'qwen2_5_vl', write: (d: string) => writeQwen2VlCheckpoint(d, TINY_QWEN2_5_VL), views: ['highres'] },
  { name: 'qwen2_vl', write: (d: string) => writeQwen2VlCheckpoint(d, TINY_QWEN2_VL), views: ['highres'] },
];

for (const fam of families) {
  test(`extract with the tiny ${fam.name}: stored grids equal the model's taps at the token map's positions`, { timeout: 120_000 }, async () => {
    const model = fam.write(join(tmp(), 'model'));
    const images = join(tmp(), 'images');
    await writeImages(images, 3);
    const out = join(tmp(), 'store');
    const s = await extractFeatures({ model, images, out, taps: ['values', 'keys', 'image.packed'], layers: '*', views: ['base', 'highres'], dtype: 'float32' });
    assert.equal(s.added, 3);
    const st = FeatureStore.open(out);
    const m = await loadModel(model);
    const proc = await loadProcessor(model);
    try {
      assert.deepEqual([...st.views], fam.views);
      const L = m.dims.lmLayers;
      for (const item of await listImages(images)) {
        const p = await proc.prepare({ images: [item.source], question: '' });
        const r = await m.forward({
          inputIds: p.inputIds, pixelValues: p.pixelValues, taps: ['lm.*.attn.k', 'lm.*.attn.v', 'image.packed'], logitsAt: 'none',
          ...(p.imageSizes ? { imageSizes: p.imageSizes } : {}), ...(p.imageGridThw ? { imageGridThw: p.imageGridThw } : {}),
        });
        const run = p.tokenMap.runs[0];
        for (const view of fam.views) {
          const cells = p.tokenMap.entries.map((e, pos) => ({ e, pos })).filter((c) => c.e?.view === view);
          const rows = Math.max(...cells.map((c) => c.e!.row)) + 1;
          const cols = Math.max(...cells.map((c) => c.e!.col)) + 1;
          if (fam.name !== 'llava_next') {
            const img = await loadImage(item.source);
            const rs = smartResize(img.height, img.width, 28, TINY_QWEN2_5_VL.minPixels, TINY_QWEN2_5_VL.maxPixels);
            assert.deepEqual([rows, cols], [rs.height / 28, rs.width / 28], `${item.id}: (H/28) x (W/28) grid`);
          }
          for (const tap of [`lm.0.attn.k`, `lm.${L - 1}.attn.v`, 'image.packed']) {
            const got = st.read(item.id, tap, { view });
            assert.deepEqual([got.rows, got.cols], [rows, cols], `${item.id} ${tap} ${view} shape`);
            const t = r.taps.get(tap)!;
            for (const c of cells) {
              const want = tap === 'image.packed' ? tokenVector(t, c.pos - run.start) : tokenVector(t, c.pos);
              const at = (c.e!.row * cols + c.e!.col) * got.dim;
              assert.deepEqual(got.data.subarray(at, at + got.dim), want, `${item.id} ${tap} ${view} (${c.e!.row}, ${c.e!.col})`);
            }
          }
        }
      }
    } finally {
      st.close();
      await m.dispose();
    }
  });
}
