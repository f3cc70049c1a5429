// extractFeatures on the generated tiny LLaVA-OneVision over generated images: what the store reads back equals the
// engine's taps computed here independently (processor -> image features -> embeddings -> decoder, grids split with
// the token-map helper), exactly for f32 and per f16 rounding for f16, at the base (raster) and high-res positions.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractFeatures, ExtractionStopped } from '../../src/extract/extract.js';
import { listImages } from '../../src/extract/sources.js';
import { FeatureStore } from '../../src/store/reader.js';
import { LlavaOnevision } from '../../src/models/llava_onevision/model.js';
import { DecoderLM } from '../../src/models/lm/decoder.js';
import { SiglipVisionModel } from '../../src/models/siglip/model.js';
import { LlavaOnevisionProcessor } from '../../src/preprocess/processor.js';
import { loadImage } from '../../src/preprocess/image.js';
import { parseSiglipImageConfig, processSiglipImages } from '../../src/preprocess/siglip-image.js';
import { imageTokenGrids } from '../../src/preprocess/token-map.js';
import { f32ToF16, halfToFloat, type Tensor } from '../../src/tensor/tensor.js';
import { KvlensInputError } from '../../src/util/errors.js';
import { HF_REF } from '../helpers/fixtures.js';
import { readFileSync } from 'node:fs';
import { tinyModel, writeImages } from './helpers.js';

const N = 24;
let model: string;
let images: string;
const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-extract-'));

before(async () => {
  model = tinyModel();
  images = join(tmp(), 'images');
  await writeImages(images, N, { sub: true });
});

/** kv [1, kvHead, pos, dHead] -> per-position vectors [pos, kvHead*dHead] (head-major), image tokens only. */
function imageRows(t: Tensor, start: number, n: number): Float32Array {
  const [, H, S, d] = t.shape;
  const out = new Float32Array(n * H * d);
  for (let p = 0; p < n; p++) for (let h = 0; h < H; h++) out.set((t.data as Float32Array).subarray((h * S + start + p) * d, (h * S + start + p + 1) * d), (p * H + h) * d);
  return out;
}

const roundF16 = (x: Float32Array) => Float32Array.from(f32ToF16(x), halfToFloat);

test('f32 and f16 stores hold the engine\'s values and keys of every layer at the base and high-res grid positions', { timeout: 120_000 }, async () => {
  const f32Out = join(tmp(), 'f32');
  const f16Out = join(tmp(), 'f16');
  const s = await extractFeatures({ model, images, out: f32Out, dtype: 'float32' });
  assert.deepEqual([s.selected, s.added, s.alreadyStored, s.skipped.length], [N, N, 0, 0]);
  await extractFeatures({ model, images, out: f16Out, dtype: 'float16', limit: 10 });

  const llava = await LlavaOnevision.load(model);
  const lm = await DecoderLM.fromWeights(llava.weights, { config: llava.text });
  const proc = await LlavaOnevisionProcessor.fromPretrained(model);
  const st32 = FeatureStore.open(f32Out);
  const st16 = FeatureStore.open(f16Out);
  try {
    const items = await listImages(images);
    assert.deepEqual(st32.images(), items.map((i) => i.id));
    assert.ok(st32.images().includes('sub/img-001.png'), 'ids are paths relative to the images root');
    assert.equal(st32.taps.length, 16);
    const highresShapes = new Set<string>();
    for (const [k, item] of items.entries()) {
      const prep = await proc.prepare({ images: [item.source], question: '' });
      const feats = await llava.imageFeatures(prep.pixelValues!, prep.imageSizes!);
      const ids = [Array.from(prep.inputIds.data as BigInt64Array, Number)];
      const out = await lm.forward({ inputsEmbeds: llava.embedWithImages(ids, feats.packed), taps: ['lm.*.attn.v', 'lm.*.attn.k'], logitsAt: 'none' });
      const run = prep.tokenMap.runs[0];
      const info = st32.image(item.id);
      assert.equal(info.source, item.source);
      const decoded = await loadImage(item.source);
      assert.deepEqual(info.originalSize, { width: decoded.width, height: decoded.height });
      for (const [tap, t] of out.taps) {
        const grids = imageTokenGrids(imageRows(t, run.start, run.end - run.start), t.shape[1] * t.shape[3], prep.layouts[0]);
        for (const view of ['base', 'highres'] as const) {
          const want = grids[view];
          const got = st32.read(item.id, tap, { view });
          assert.deepEqual([got.rows, got.cols, got.dim], [want.rows, want.cols, want.dim], `${item.id} ${tap} ${view} shape`);
          assert.deepEqual(got.data, want.data, `${item.id} ${tap} ${view} f32 values`);
          if (k < 10) assert.deepEqual(st16.read(item.id, tap, { view }).data, roundF16(want.data), `${item.id} ${tap} ${view} f16 values`);
        }
        highresShapes.add(`${grids.highres.rows}x${grids.highres.cols}`);
      }
      // One head's slice of a key grid is the head's keys.
      const head1 = st32.read(item.id, 'lm.3.attn.k', { view: 'base', head: 1 });
      const t = out.taps.get('lm.3.attn.k')!;
      assert.deepEqual(head1.data.subarray(0, t.shape[3]), (t.data as Float32Array).subarray((1 * t.shape[2] + run.start) * t.shape[3], (1 * t.shape[2] + run.start + 1) * t.shape[3]));
    }
    assert.ok(highresShapes.size >= 4, `images should give several high-res grids, got ${[...highresShapes]}`);
    assert.equal(st16.images().length, 10);
    assert.deepEqual(st32.verify({ hashes: true }), []);
  } finally {
    st32.close();
    st16.close();
    await lm.dispose();
    await llava.dispose();
  }
});

test('image.packed, projector.out, vision taps and the SigLIP baseline land in the same store at their grids', { timeout: 60_000 }, async () => {
  const out = join(tmp(), 'vision');
  const siglipDir = join(HF_REF, 'models/siglip_vision_tiny');
  await extractFeatures({
    model, images, out, dtype: 'float32', limit: 4, siglip: siglipDir,
    taps: ['lm.embed', 'image.packed', 'projector.out', 'vision.1.out', 'siglip.*.out', 'siglip.post_norm'],
  });
  const llava = await LlavaOnevision.load(model);
  const siglip = await SiglipVisionModel.load(siglipDir);
  const proc = await LlavaOnevisionProcessor.fromPretrained(model);
  const sigCfg = parseSiglipImageConfig(JSON.parse(readFileSync(join(siglipDir, 'preprocessor_config.json'), 'utf8')));
  const st = FeatureStore.open(out);
  try {
    assert.deepEqual([...st.views], ['base', 'highres', 'siglip']);
    for (const id of st.images()) {
      const src = st.image(id).source;
      const prep = await proc.prepare({ images: [src], question: '' });
      const feats = await llava.imageFeatures(prep.pixelValues!, prep.imageSizes!, ['projector.out', 'vision.1.out']);
      const D = feats.packed.shape[1];
      const grids = imageTokenGrids(feats.packed.data as Float32Array, D, prep.layouts[0]);
      for (const tap of ['image.packed', 'lm.embed']) {
        // image.packed is what the LM's input embeddings hold at the image positions.
        assert.deepEqual(st.read(id, tap).data, grids.base.data, `${id} ${tap} base`);
        assert.deepEqual(st.read(id, tap, { view: 'highres' }).data, grids.highres.data, `${id} ${tap} highres`);
      }
      for (const tap of ['projector.out', 'vision.1.out']) {
        const t = feats.taps.get(tap)!; // [tile, token, d]: tile 0 is the base tile
        const g = st.read(id, tap);
        assert.deepEqual([g.rows, g.cols, g.dim], [4, 4, t.shape[2]]);
        assert.deepEqual(g.data, (t.data as Float32Array).subarray(0, 16 * t.shape[2]), `${id} ${tap}`);
        assert.throws(() => st.read(id, tap, { view: 'highres' }), /stored for views \[base\]/);
      }
      const sig = await siglip.forward(processSiglipImages([await loadImage(src)], sigCfg));
      for (const tap of ['siglip.0.out', 'siglip.1.out', 'siglip.post_norm']) {
        const g = st.read(id, tap); // default view: "siglip"
        assert.deepEqual([g.rows, g.cols, g.dim], [4, 4, 48]);
        assert.deepEqual(g.data, sig.taps.get(tap)!.data, `${id} ${tap}`);
      }
    }
    assert.deepEqual(st.verify(), []);
  } finally {
    st.close();
    await llava.dispose();
    await siglip.dispose();
  }
});

test('--resolution gives every image the same grids; batched equal-length prompts match per-image runs', { timeout: 60_000 }, async () => {
  const one = join(tmp(), 'b1');
  const three = join(tmp(), 'b3');
  await extractFeatures({ model, images, out: one, dtype: 'float32', limit: 6, resolution: 112, taps: ['lm.{0,7}.attn.v'] });
  await extractFeatures({ model, images, out: three, dtype: 'float32', limit: 6, resolution: 112, batchSize: 3, taps: ['lm.{0,7}.attn.v'] });
  const a = FeatureStore.open(one);
  const b = FeatureStore.open(three);
  try {
    const shapes = new Set(a.images().map((id) => JSON.stringify(a.image(id).views)));
    assert.deepEqual([...shapes], [JSON.stringify({ base: { rows: 4, cols: 4 }, highres: { rows: 8, cols: 8 } })]);
    assert.notDeepEqual(a.image(a.images()[1]).originalSize, { width: 112, height: 112 }, 'the original size is recorded');
    for (const id of a.images()) {
      for (const tap of ['lm.0.attn.v', 'lm.7.attn.v']) {
        const x = a.read(id, tap, { view: 'highres' }).data;
        const y = b.read(id, tap, { view: 'highres' }).data;
        let d = 0;
        for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
        assert.ok(d < 1e-4, `${id} ${tap}: batched differs by ${d}`);
      }
    }
    // Batch size is part of the identity: it may change the last bits.
    await assert.rejects(extractFeatures({ model, images, out: one, dtype: 'float32', limit: 6, resolution: 112, batchSize: 2, taps: ['lm.{0,7}.attn.v'] }), /batchSize/);
  } finally {
    a.close();
    b.close();
  }
});

test('an unreadable image: skipped and reported with --on-error skip, named when the run stops', { timeout: 60_000 }, async () => {
  const dir = join(tmp(), 'imgs');
  await writeImages(dir, 4);
  writeFileSync(join(dir, 'img-001b.png'), Buffer.from('this is not a png'));
  const out = join(tmp(), 'skip');
  const seen: string[] = [];
  const s = await extractFeatures({ model, images: dir, out, onError: 'skip', taps: ['lm.0.attn.v'] }, { onImage: (e) => seen.push(`${e.id}:${e.status}`) });
  assert.deepEqual(s.skipped.map((x) => x.id), ['img-001b.png']);
  assert.match(s.skipped[0].error, /unsupported or unrecognised image format/);
  assert.deepEqual(seen, ['img-000.png:added', 'img-001.png:added', 'img-001b.png:skipped', 'img-002.png:added', 'img-003.png:added']);
  const st = FeatureStore.open(out);
  assert.deepEqual(st.images(), ['img-000.png', 'img-001.png', 'img-002.png', 'img-003.png']);
  st.close();

  const stopOut = join(tmp(), 'stop');
  await assert.rejects(extractFeatures({ model, images: dir, out: stopOut, onError: 'stop', taps: ['lm.0.attn.v'] }), (e: unknown) =>
    e instanceof ExtractionStopped && /"img-001b\.png"/.test(e.message) && /unsupported/.test(e.message) && /--on-error/.test(e.message));
  // The open shard was dropped (not closed at a data-dependent boundary); the store is valid and empty.
  const st2 = FeatureStore.open(stopOut);
  assert.deepEqual(st2.images(), []);
  st2.close();
});

test('a store made with another prefix or model is refused, naming the field; shards follow SLURM variables', { timeout: 60_000 }, async () => {
  const out = join(tmp(), 'ident');
  const base = { model, images, out, taps: ['lm.0.attn.k'], limit: 4 };
  await extractFeatures(base);
  const again = await extractFeatures(base);
  assert.deepEqual([again.added, again.alreadyStored], [0, 4]);
  await assert.rejects(extractFeatures({ ...base, prefix: 'A photo of a dog.\n' }), (e: unknown) =>
    e instanceof KvlensInputError && /refusing/.test(e.message) && /prompt\.(template|prefix) differs/.test(e.message) && /A photo of a dog/.test(e.message));
  const other = tinyModel();
  await assert.rejects(extractFeatures({ ...base, model: other }), (e: unknown) => e instanceof KvlensInputError && /refusing/.test(e.message) && /model\.path differs/.test(e.message));
  await assert.rejects(extractFeatures({ ...base, dtype: 'float32' }), /dtype differs/);

  const part = join(tmp(), 'part');
  const env = { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2' };
  const s = await extractFeatures({ ...base, out: part, limit: 10, shard: 'auto' }, { env });
  // Not asked to shard (the API default, as experiments call it): the array variables are ignored.
  const whole = await extractFeatures({ ...base, out: join(tmp(), 'whole'), limit: 2 }, { env });
  assert.deepEqual([whole.shard, whole.selected], [{ index: 0, count: 1 }, 2]);
  assert.deepEqual([s.shard, s.selected], [{ index: 1, count: 2 }, 5]);
  const st = FeatureStore.open(part);
  assert.deepEqual(st.images(), (await listImages(images)).slice(5, 10).map((i) => i.id));
  st.close();
});
