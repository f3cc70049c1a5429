// The one extractor, for every family (tiny generated LLaVA-OneVision, LLaVA-NeXT, Qwen2.5-VL, Qwen2-VL):
// - vision taps (a tower layer, the post-norm, the projector) and the encoder baseline read back from the store
//   equal the model's own taps (a separate forward through the interface / the tower itself), at the view each is
//   stored on: LLaVA's base tile (CLS dropped for CLIP), Qwen's patch grid ("patches") and merged grid ("highres");
// - batched extraction equals one-at-a-time extraction (different-length prompts: one tower batch, LM per image;
//   --resolution: equal lengths, the LM batched too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractFeatures } from '../../src/extract/extract.js';
import { FeatureStore } from '../../src/store/reader.js';
import { tapViews } from '../../src/store/gather.js';
import { loadVisionModel } from '../../src/models/index.js';
import { ClipVisionModel } from '../../src/models/clip/model.js';
import { SiglipVisionModel } from '../../src/models/siglip/model.js';
import { writeLlavaOnevisionCheckpoint } from '../../src/models/synthetic/llava-onevision.js';
import { writeLlavaNextCheckpoint } from '../../src/models/synthetic/llava-next.js';
import { writeQwen2VlCheckpoint, TINY_QWEN2_5_VL, TINY_QWEN2_VL } from '../../src/models/synthetic/qwen2-vl.js';
import { writeClipVisionCheckpoint, writeSiglipVisionCheckpoint } from '../../src/models/synthetic/vision-towers.js';
import { parseClipImageConfig, processClipImages } from '../../src/preprocess/clip-image.js';
import { parseSiglipImageConfig, processSiglipImages } from '../../src/preprocess/siglip-image.js';
import { loadImage } from '../../src/preprocess/image.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { writeImages } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-one-extractor-'));

const families = [
  { name: 'llava_onevision', write: (d: string) => writeLlavaOnevisionCheckpoint(d), baseline: 'siglip' as const },
  { name: 'llava_next', write: (d: string) => writeLlavaNextCheckpoint(d), baseline: 'clip' as const },
  { name: 'qwen2_5_vl', write: (d: string) => writeQwen2VlCheckpoint(d, TINY_QWEN2_5_VL), baseline: 'siglip' as const },
  { name: 'qwen2_vl', write: (d: string) => writeQwen2VlCheckpoint(d, TINY_QWEN2_VL), baseline: 'clip' as const },
];

const VISION_TAPS = ['vision.0.out', 'vision.post_norm', 'projector.out'];

/** HF's pixel_values patch order of an h x w grid (merge units in raster order, merge x merge inside): cell -> row. */
function hfPatchRows(h: number, w: number, m: number): number[] {
  const rowOf = new Array<number>(h * w);
  let idx = 0;
  for (let ur = 0; ur < h / m; ur++) for (let uc = 0; uc < w / m; uc++) for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) rowOf[(ur * m + i) * w + uc * m + j] = idx++;
  return rowOf;
}

/** rows [n, d] of `t` picked by `rows`, concatenated. */
function pick(t: Tensor, rows: readonly number[], offset = 0): Float32Array {
  const d = t.shape[t.shape.length - 1];
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, k) => out.set((t.data as Float32Array).subarray((offset + r) * d, (offset + r + 1) * d), k * d));
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const fam of families) {
  test(`${fam.name}: vision taps, projector and the encoder baseline read back equal the model's own taps`, { timeout: 180_000 }, async () => {
    const model = fam.write(join(tmp(), 'model'));
    const towerDir = fam.baseline === 'clip' ? writeClipVisionCheckpoint(join(tmp(), 'clip')) : writeSiglipVisionCheckpoint(join(tmp(), 'siglip'));
    const images = join(tmp(), 'images');
    await writeImages(images, 3);
    const out = join(tmp(), 'store');
    await extractFeatures({
      model, images, out, dtype: 'float32', encoderBaseline: towerDir,
      taps: ['lm.0.attn.k', 'image.packed', ...VISION_TAPS, 'baseline.*.out', 'baseline.post_norm'],
    });
    const m = await loadVisionModel(model);
    const tower = fam.baseline === 'clip' ? await ClipVisionModel.load(towerDir) : await SiglipVisionModel.load(towerDir);
    const pre = JSON.parse(readFileSync(join(towerDir, 'preprocessor_config.json'), 'utf8'));
    const st = FeatureStore.open(out);
    try {
      const qwen = m.spec.visionTapLayout.kind === 'rows';
      assert.deepEqual([...st.views], qwen ? ['highres', 'patches', 'baseline'] : ['base', 'highres', 'baseline']);
      for (const id of st.images()) {
        const src = st.image(id).source;
        const p = await m.prepare({ images: [src], question: '' });
        const r = await m.forward({ ...m.imageRequest(p), taps: VISION_TAPS, logitsAt: 'none' });
        if (!qwen) {
          for (const tap of VISION_TAPS) {
            const t = r.taps.get(tap)!; // [tile, token, d]; tile 0 = base tile, CLIP's CLS first
            const g = st.read(id, tap, { view: 'base' });
            const cls = t.shape[1] - g.rows * g.cols;
            assert.equal(cls, tap !== 'projector.out' && fam.name === 'llava_next' ? 1 : 0, `${tap}: CLS tokens`);
            assert.deepEqual(g.data, pick(t, Array.from({ length: g.rows * g.cols }, (_, k) => k), cls), `${id} ${tap}`);
          }
        } else {
          const [, h, w] = Array.from(p.imageGridThw!.data, Number);
          const rows = hfPatchRows(h, w, 2);
          for (const tap of ['vision.0.out', 'vision.post_norm']) {
            const g = st.read(id, tap, { view: 'patches' });
            assert.deepEqual([g.rows, g.cols], [h, w], `${id} ${tap}: the h x w patch grid`);
            assert.deepEqual(g.data, pick(r.taps.get(tap)!, rows), `${id} ${tap}`);
          }
          const proj = st.read(id, 'projector.out', { view: 'highres' });
          assert.deepEqual([proj.rows, proj.cols], [h / 2, w / 2]);
          assert.deepEqual(proj.data, (r.taps.get('projector.out')!.data as Float32Array), `${id} projector.out = merged tokens in raster order`);
          assert.deepEqual(proj.data, st.read(id, 'image.packed', { view: 'highres' }).data, 'the merger output is what is packed');
        }
        const pixels = fam.baseline === 'clip'
          ? processClipImages([await loadImage(src)], parseClipImageConfig(pre))
          : processSiglipImages([await loadImage(src)], parseSiglipImageConfig(pre));
        const own = (await tower.forward(pixels, {})).taps;
        const cls = fam.baseline === 'clip' ? 1 : 0;
        for (const [l, name] of [['0.out', `${fam.baseline}.0.out`], ['1.out', `${fam.baseline}.1.out`], ['post_norm', `${fam.baseline}.post_norm`]]) {
          const g = st.read(id, `baseline.${l}`);
          assert.deepEqual([g.rows, g.cols], [4, 4]);
          assert.deepEqual(g.data, pick(own.get(name)!, Array.from({ length: 16 }, (_, k) => k), cls), `${id} baseline.${l}`);
        }
      }
      assert.deepEqual(st.verify(), []);
    } finally {
      st.close();
      await m.dispose();
      await tower.dispose();
    }
  });

  test(`${fam.name}: batched extraction equals one-at-a-time extraction`, { timeout: 180_000 }, async () => {
    const model = fam.write(join(tmp(), 'model'));
    const images = join(tmp(), 'images');
    await writeImages(images, 3);
    const taps = ['lm.{0,1}.attn.k', 'lm.1.attn.v', 'lm.1.attn.q_proj', 'image.packed', ...VISION_TAPS];
    for (const resolution of [undefined, 60]) {
      const stores = [];
      for (const batchSize of [1, 3]) {
        const out = join(tmp(), `b${batchSize}`);
        await extractFeatures({ model, images, out, dtype: 'float32', batchSize, taps, ...(resolution ? { resolution } : {}) });
        stores.push(FeatureStore.open(out));
      }
      const [one, batched] = stores;
      try {
        assert.deepEqual([...batched.views], [...one.views]);
        for (const id of one.images()) {
          for (const tap of one.identity.taps) {
            for (const view of tapViews(tap, one.views)) {
              const d = maxDiff(batched.read(id, tap, { view }).data, one.read(id, tap, { view }).data);
              assert.ok(d < 1e-5, `${fam.name} ${id} ${tap} ${view} (resolution ${resolution ?? 'native'}): batched differs by ${d}`);
            }
          }
        }
      } finally {
        for (const s of stores) s.close();
      }
    }
  });
}
