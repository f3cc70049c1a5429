// The one model interface, for every vision-language family on its tiny generated checkpoint, through
// loadVisionModel only: prepare (prefix before the image, several images) via the family's own processor and
// template; batched encodeImages equals encoding each prompt alone; a forward on pre-encoded images equals the forward
// from pixels; greedy generation equals a manual continue loop on the cache; image views and tap facts as data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { familySpec, isVisionModel, loadModel, loadVisionModel, sequenceViews } from '../../src/models/index.js';
import { writeLlavaOnevisionCheckpoint } from '../../src/models/synthetic/llava-onevision.js';
import { writeLlavaNextCheckpoint } from '../../src/models/synthetic/llava-next.js';
import { writeQwen2VlCheckpoint, TINY_QWEN2_5_VL, TINY_QWEN2_VL } from '../../src/models/synthetic/qwen2-vl.js';
import { argmaxRows } from '../../src/models/lm/index.js';
import { rgbImage } from '../../src/preprocess/image.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { HF_REF } from '../helpers/fixtures.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-interface-'));

const families = [
  { name: 'llava_onevision', write: (d: string) => writeLlavaOnevisionCheckpoint(d) },
  { name: 'llava_next', write: (d: string) => writeLlavaNextCheckpoint(d) },
  { name: 'qwen2_5_vl', write: (d: string) => writeQwen2VlCheckpoint(d, TINY_QWEN2_5_VL) },
  { name: 'qwen2_vl', write: (d: string) => writeQwen2VlCheckpoint(d, TINY_QWEN2_VL) },
];

/** A deterministic RGB image. */
function image(w: number, h: number, seed: number) {
  const img = rgbImage(w, h);
  for (let i = 0; i < img.data.length; i++) img.data[i] = (i * 31 + seed * 97 + ((i / 3) | 0) * 7) % 251;
  return img;
}

function maxDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  let m = 0;
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

for (const fam of families) {
  test(`${fam.name}: prepare, batched encoding, pre-encoded forward and generation through the one interface`, { timeout: 180_000 }, async () => {
    const dir = fam.write(join(tmp(), 'model'));
    const m = await loadVisionModel(dir);
    try {
      assert.equal(m.family, fam.name);
      assert.ok(isVisionModel(m));
      assert.deepEqual(m.spec, familySpec(fam.name));

      // prefix before the image, two images in one prompt
      const two = await m.prepare({ images: [image(60, 45, 1), image(40, 70, 2)], prefix: 'Look at this:', question: 'What differs?' });
      assert.equal(two.tokenMap.runs.length, 2);
      assert.ok(two.prompt.indexOf('Look at this:') < two.prompt.indexOf(m.spec.prompt.imagePlaceholder), 'the prefix comes before the image');
      for (const i of [0, 1]) {
        const views = m.imageViews(two, i);
        for (const v of sequenceViews(m.spec)) assert.ok(views[v], `image ${i} has view ${v}`);
        const run = two.tokenMap.runs[i];
        for (const v of sequenceViews(m.spec)) for (const p of Array.from(views[v].positions)) assert.ok(p >= run.start && p < run.end, `${v} positions inside image ${i}`);
      }
      const fromPixels = await m.forward({ ...m.imageRequest(two), taps: ['lm.1.attn.k', 'image.packed', 'vision.0.out'], logitsAt: 'last' });
      assert.equal(fromPixels.imageTokens!.length, 2);

      // batched encodeImages over three prompts equals each prompt alone
      const one = await m.prepare({ images: [image(50, 50, 3)], question: '' });
      const prompts = [two, one, await m.prepare({ images: [image(90, 30, 4)], question: '' })];
      const taps = ['vision.0.out', 'vision.post_norm', 'projector.out'];
      const batched = await m.encodeImages(prompts, taps);
      for (const [i, p] of prompts.entries()) {
        const [alone] = await m.encodeImages([p], taps);
        assert.ok(maxDiff(batched[i].packed, alone.packed) < 1e-5, `prompt ${i}: packed`);
        assert.deepEqual(batched[i].lengths, alone.lengths);
        for (const t of taps) assert.ok(maxDiff(batched[i].taps.get(t)!, alone.taps.get(t)!) < 1e-5, `prompt ${i}: ${t}`);
      }
      assert.ok(maxDiff(batched[0].taps.get('vision.0.out')!, fromPixels.taps.get('vision.0.out')!) < 1e-5, 'encodeImages taps = forward taps');

      // the forward on pre-encoded images equals the forward from pixels
      const pre = await m.forward({ inputIds: two.inputIds, images: [batched[0]], taps: ['lm.1.attn.k'], logitsAt: 'last' });
      assert.ok(maxDiff(pre.logits!, fromPixels.logits!) < 1e-5);
      assert.ok(maxDiff(pre.taps.get('lm.1.attn.k')!, fromPixels.taps.get('lm.1.attn.k')!) < 1e-5);
      await assert.rejects(m.forward({ ...m.imageRequest(two), images: [batched[0]] }), /either images \(encoded\) or pixelValues/);

      // greedy generation = prefill + argmax continue loop on the cache (the image is not re-encoded)
      const gen = await m.generate({ ...m.imageRequest(one) }, { maxNewTokens: 3, eos: [] });
      let step = await m.forward({ ...m.imageRequest(one), logitsAt: 'last' });
      const manual: number[] = [];
      for (let k = 0; k < 3; k++) {
        const [next] = argmaxRows(step.logits!);
        manual.push(next);
        if (k < 2) step = await m.continue(step.cache, [[next]], { logitsAt: 'last' });
      }
      assert.deepEqual(gen.tokens[0], manual);

      // tap facts come from the table with the family's data
      const v = m.tapInfo('vision.0.out');
      assert.equal(v.towerView, m.spec.towerView);
      assert.equal(v.layout, m.spec.visionTapLayout.kind);
      assert.equal(m.tapInfo('lm.0.attn.k_proj').heads, m.dims.kvHeads);
      assert.throws(() => m.tapInfo('vision.0.attn.probs'), /not produced by this model's image path/);
      assert.throws(() => m.tapInfo('baseline.0.out'), /encoder-baseline/);
      assert.equal(m.encodeText('hello').length > 0, true);
    } finally {
      await m.dispose();
    }
  });
}

test('vision attention probabilities: built on request for every family, per tile or over the image; every listed vision hook registers and is produced', { timeout: 180_000 }, async () => {
  for (const fam of families) {
    const dir = fam.write(join(tmp(), 'model'));
    const m = await loadVisionModel(dir, { visionAttentionProbs: true });
    try {
      const p = await m.prepare({ images: [image(50, 40, 5)], question: '' });
      // Each hook the family lists is a name of the vocabulary with a table row, produced by the image path, and comes
      // back from one encodeImages call with the rank of its resolved layout (no internal outputs listed as hooks).
      const hooks = m.visionHooks;
      assert.ok(hooks.includes('vision.embed') && hooks.includes('projector.out') && hooks.includes(`vision.${m.dims.visionLayers - 1}.out`), `${fam.name}: ${hooks.join(', ')}`);
      const infos = hooks.map((h) => m.tapInfo(h));
      for (const i of infos) assert.equal(i.info.producer, 'image-path', `${fam.name}: ${i.name}`);
      const [all] = await m.encodeImages([p], hooks);
      const rank: Record<string, number> = { tiles: 3, rows: 2, towerProbs: 4 };
      for (const i of infos) assert.equal(all.taps.get(i.name)?.shape.length, rank[i.layout], `${fam.name}: ${i.name} (${i.layout})`);
      const [enc] = await m.encodeImages([p], ['vision.0.attn.probs', 'vision.0.out']);
      const probs = enc.taps.get('vision.0.attn.probs')!; // [tile | 1, head, token, token]
      assert.equal(probs.shape.length, 4, fam.name);
      const [, , q, k] = probs.shape;
      assert.equal(q, k);
      const row = (probs.data as Float32Array).subarray(0, k);
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-4, `${fam.name}: a probability row sums to 1`);
    } finally {
      await m.dispose();
    }
  }
});

test('loadVisionModel refuses a text-only checkpoint naming model_type; loadModel still opens it', async () => {
  const dir = join(HF_REF, 'models/qwen2_tiny');
  await assert.rejects(loadVisionModel(dir), /"model_type" is "qwen2"; a vision-language model is needed/);
  const m = await loadModel(dir);
  assert.equal(isVisionModel(m), false);
  await m.dispose();
});
