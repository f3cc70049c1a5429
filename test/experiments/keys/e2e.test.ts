// End to end on the generated tiny LLaVA-OneVision: live forwards and a float32 store give the same variances; mixed
// grids are refused without --resolution; a text position shared by every prompt has variance exactly 0 and is
// flagged while image positions are not; the block specs run in the model and change its output.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accumulateTaps, runKeyVariance, summarise, KeyVarianceConfigSchema } from '../../../src/experiments/keys/run.js';
import { KeyVarianceState } from '../../../src/experiments/keys/state.js';
import { blockSpecsForPrompt } from '../../../src/experiments/keys/blocking.js';
import { parseExtractConfig } from '../../../src/extract/config.js';
import { extractFeatures } from '../../../src/extract/extract.js';
import { Extractor } from '../../../src/extract/engine.js';
import { listImages } from '../../../src/extract/sources.js';
import { LlavaOnevision } from '../../../src/models/llava_onevision/model.js';
import { LlavaOnevisionProcessor } from '../../../src/preprocess/processor.js';
import { loadImage } from '../../../src/preprocess/image.js';
import { resizeRgb } from '../../../src/preprocess/pil-resize.js';
import { KvlensInputError } from '../../../src/util/errors.js';
import { tinyModelWithImages } from '../../helpers/extract-cli.js';

const RES = 70;
let model: string;
let images: string;

before(async () => {
  ({ model, images } = await tinyModelWithImages(6, 'keys-e2e')); // varied sizes: same grid only with --resolution
});

test('live and store runs agree exactly; mixed high-res grids are refused without --resolution', { timeout: 120_000 }, async () => {
  const cfg = { view: 'highres' as const, blockLayers: '-4:', threshold: 'auto' as const };
  const live = await runKeyVariance({ live: { model, images, resolution: RES } }, cfg);
  const store = join(mkdtempSync(join(tmpdir(), 'kvlens-keys-store-')), 'store');
  await extractFeatures({ model, images, out: store, taps: ['keys'], dtype: 'float32', resolution: RES, views: ['highres'] });
  const stored = await runKeyVariance({ store }, cfg);
  assert.equal(live.result.nImages, 6);
  assert.deepEqual(live.result.layers.map((l) => l.layer), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(live.result.blockedLayers, [4, 5, 6, 7]);
  assert.deepEqual(stored.result.layers.map((l) => l.variance), live.result.layers.map((l) => l.variance));
  assert.ok(live.result.layers.every((l) => l.variance.every((v) => v > 0)), 'real image keys vary across images');
  await assert.rejects(runKeyVariance({ live: { model, images } }, cfg),
    (e: Error) => e instanceof KvlensInputError && /--resolution/.test(e.message));
});

test('a text position shared by all prompts has variance exactly 0 and is input-agnostic; image positions are not', { timeout: 120_000 }, async () => {
  const engine = await Extractor.open(parseExtractConfig({ model, images, out: '-', taps: ['keys'], views: ['base'], dtype: 'float32' }));
  try {
    const items = await listImages(images);
    let state: KeyVarianceState | undefined;
    let textCount = 0;
    for (const item of items) {
      const prepared = await engine.prepare(await item.load());
      const base = prepared.views.base;
      textCount = prepared.imageStart;
      // one row: the text tokens before the image (identical prompts), then the 16 base-view image tokens
      const view = { rows: 1, cols: textCount + 16, positions: [...Array.from({ length: textCount }, (_, i) => i), ...Array.from(base.positions)] };
      const [taps] = await engine.run([prepared]);
      const k0 = taps.get('lm.0.attn.k')!;
      state ??= new KeyVarianceState({ tap: 'lm.{L}.attn.k', view: 'text+base', shape: { rows: 1, cols: view.cols, heads: k0.shape[1], headDim: k0.shape[3] }, imageIds: items.map((i) => i.id) }, [0, 3, 7]);
      accumulateTaps(state, taps, view);
    }
    assert.ok(textCount > 3);
    const run = summarise(state!, KeyVarianceConfigSchema.parse({ threshold: 'auto', blockLayers: '7' }), { model: 'tiny', imageSource: 'test', lmLayers: 8 });
    const textPositions = Array.from({ length: textCount }, (_, i) => i);
    for (const l of run.result.layers) {
      assert.ok(textPositions.every((p) => l.variance[p] === 0), `layer ${l.layer}: text keys are identical in every prompt`);
      assert.deepEqual(l.inputAgnostic, textPositions, `layer ${l.layer}: exactly the text positions are input-agnostic`);
    }
  } finally {
    await engine.dispose();
  }
});

test('block specs from the analysis run in the model and change its answer logits; the control differs', { timeout: 120_000 }, async () => {
  const run0 = await runKeyVariance({ live: { model, images, resolution: RES } }, { view: 'base', blockLayers: '-4:', threshold: 'auto' });
  // τ at the median of the block layers' variances, so about half the base grid is blocked there
  const pooled = run0.result.layers.filter((l) => l.layer >= 4).flatMap((l) => l.variance).sort((a, b) => a - b);
  const run = summarise(run0.state, KeyVarianceConfigSchema.parse({ view: 'base', blockLayers: '-4:', threshold: pooled[pooled.length >> 1], randomSeed: 3 }),
    { model: 'tiny', imageSource: 'test', lmLayers: 8 });
  assert.ok(run.flagged.layers.some((l) => l.positions.length > 0));
  const proc = await LlavaOnevisionProcessor.fromPretrained(model);
  const llava = await LlavaOnevision.load(model);
  try {
    const item = (await listImages(images))[2];
    const prep = await proc.prepare({ images: [resizeRgb(await loadImage(item.source), RES, RES, 'bicubic')], question: 'Is there a square?' });
    const specs = blockSpecsForPrompt(run.flagged, prep.tokenMap);
    const control = blockSpecsForPrompt(run.random, prep.tokenMap);
    assert.deepEqual(specs.flatMap((s) => s.layers).sort(), run.flagged.layers.filter((l) => l.positions.length).map((l) => l.layer).sort());
    assert.deepEqual(specs.map((s) => s.keys.length), control.map((s) => s.keys.length));
    const req = { inputIds: prep.inputIds, pixelValues: prep.pixelValues, imageSizes: prep.imageSizes, logitsAt: 'last' as const };
    const plain = await llava.forward(req);
    const blocked = await llava.forward({ ...req, block: specs });
    const ctrl = await llava.forward({ ...req, block: control });
    const diff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
    const d1 = diff(plain.logits!.data, blocked.logits!.data);
    const d2 = diff(blocked.logits!.data, ctrl.logits!.data);
    assert.ok(d1 > 1e-5, `blocking changes the logits (${d1})`);
    assert.ok(d2 > 1e-5, `the control blocks other keys (${d2})`);
  } finally {
    await llava.dispose();
  }
});
