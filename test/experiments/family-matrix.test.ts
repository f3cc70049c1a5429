// The family x experiment matrix on the tiny checkpoints of the paper's three families, checking numbers through the
// same code the experiments run (the model interface, the extractor, the eval runner, the BlockSpec builder):
//   keys      the live key variance equals the variance recomputed here from an extracted store of the same images
//   blocking  blocking nothing gives exactly the unblocked tokens; blocking every image key from the text in every
//             layer makes the logits independent of the image (and they do depend on it unblocked)
//   prefix    a text prefix before the image changes the image tokens' values (from layer 1 on) and nothing before it
//   flow      the flow experiment probes every layer's values and keys plus the projector reference, from its store
//   underutil the values' answers come from the model's own image-token values (pooled again here)
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { blockSpecsFor } from '../../src/eval/blocks.js';
import { selectImageKeys } from '../../src/eval/conditions.js';
import { evaluateBenchmark } from '../../src/eval/runner.js';
import { extractFeatures } from '../../src/extract/extract.js';
import { listImages } from '../../src/extract/sources.js';
import { runKeyVariance } from '../../src/experiments/keys/index.js';
import { parseExperimentConfig } from '../../src/experiments/config.js';
import { resolveView } from '../../src/experiments/model.js';
import { runExperiment } from '../../src/experiments/run.js';
import { loadVisionModel } from '../../src/models/index.js';
import { span } from '../../src/models/lm/index.js';
import { TINY_MODELS } from '../../src/models/synthetic/index.js';
import type { VisionLanguageModelApi } from '../../src/models/types.js';
import { resizeRgb } from '../../src/preprocess/pil-resize.js';
import { loadImage } from '../../src/preprocess/image.js';
import { FeatureStore } from '../../src/store/index.js';
import { writeImages } from '../extract/helpers.js';

const FAMILIES = ['llava_onevision', 'llava_next', 'qwen2_5_vl'] as const;
const RES = 84;
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

for (const family of FAMILIES) {
  describe(`${family}: every experiment, checked in numbers`, { timeout: 240_000 }, () => {
    let root: string;
    let modelDir: string;
    let images: string;
    let model: VisionLanguageModelApi;

    before(async () => {
      root = mkdtempSync(join(tmpdir(), `kvlens-matrix-${family}-`));
      modelDir = TINY_MODELS[family].write(join(root, 'model'));
      images = join(root, 'images');
      await writeImages(images, 4);
      model = await loadVisionModel(modelDir, { threads: 1 });
    });
    after(async () => {
      await model.dispose();
      rmSync(root, { recursive: true, force: true });
    });

    test('keys: the live key variance equals the variance recomputed from an extracted store of the same images', async () => {
      const view = resolveView(modelDir, undefined);
      const run = await runKeyVariance({ live: { model: modelDir, images, resolution: RES } }, { view, blockLayers: '-2:', threshold: 'auto' });
      assert.equal(run.result.nImages, 4);
      assert.equal(run.result.resize?.width, RES, 'the fixed resize is stated in the result');
      const store = join(root, 'keys-store');
      await extractFeatures({ model: modelDir, images, out: store, taps: ['keys'], layers: '*', views: [view], dtype: 'float32', resolution: RES });
      const fs = FeatureStore.open(store);
      try {
        const ids = fs.images();
        for (const entry of run.result.layers) {
          const grids = ids.map((id) => fs.read(id, `lm.${entry.layer}.attn.k`, { view }));
          const { rows, cols, dim } = grids[0];
          assert.deepEqual([rows, cols], [run.result.grid.rows, run.result.grid.cols]);
          const expected = new Float64Array(rows * cols);
          for (let p = 0; p < rows * cols; p++) {
            for (let d = 0; d < dim; d++) {
              let s = 0, s2 = 0;
              for (const g of grids) { const x = g.data[p * dim + d]; s += x; s2 += x * x; }
              const mean = s / grids.length;
              expected[p] += s2 / grids.length - mean * mean;
            }
          }
          const scale = Math.max(...expected);
          assert.ok(scale > 0, `layer ${entry.layer}: the keys vary across images`);
          assert.ok(maxAbsDiff(entry.variance, expected) <= 1e-4 * scale, `layer ${entry.layer}: live variance = store variance`);
        }
      } finally {
        fs.close();
      }
    });

    test('blocking: nothing blocked = unblocked exactly; every image key blocked in every layer = logits independent of the image', async () => {
      const dataRoot = join(root, 'pope');
      await generateSynthetic('pope', dataRoot, { seed: 1, n: 1 });
      const all = span(0, model.dims.lmLayers);
      const r = await evaluateBenchmark({
        model, samples: (await import('../../src/data/index.js')).iterateDataset('pope', dataRoot, { split: 'random', limit: 2 }), maxNewTokens: 4, eos: [],
        conditions: [{ name: 'none' }, { name: 'block-nothing', blocksFor: () => [{ layers: all, keys: [] }] }],
        outputsPath: join(root, 'pope.jsonl'),
      });
      assert.equal(r.items, 2);
      const lines = readFileSync(join(root, 'pope.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { condition: string; id: string; tokens: number[] });
      for (const id of new Set(lines.map((l) => l.id))) {
        const [a, b] = ['none', 'block-nothing'].map((c) => lines.find((l) => l.id === id && l.condition === c)!.tokens);
        assert.deepEqual(b, a, `${id}: blocking nothing gives the unblocked tokens`);
      }

      // Two different images of the same size: same token count, same positions (M-RoPE included), different pixels.
      const [a, b] = (await listImages(images)).slice(0, 2);
      const logits = async (src: string, block: boolean) => {
        const img = resizeRgb(await loadImage(src), RES, RES, 'bicubic');
        const p = await model.prepare({ images: [img], question: 'Is there a red square in the image?' });
        const len = p.tokenMap.length;
        const imageEnd = Math.max(...p.tokenMap.runs.map((run) => run.end));
        const specs = block ? blockSpecsFor([{ layers: all, keys: selectImageKeys(p.tokenMap, 'all') }], span(imageEnd, len)) : [];
        const out = await model.forward({ ...model.imageRequest(p), block: specs, logitsAt: 'last' });
        return out.logits!.data as Float32Array;
      };
      const free = maxAbsDiff(await logits(a.source, false), await logits(b.source, false));
      assert.ok(free > 1e-4, `unblocked, the answer logits depend on the image (${free})`);
      const blocked = maxAbsDiff(await logits(a.source, true), await logits(b.source, true));
      assert.ok(blocked < 1e-5, `every image key blocked: the logits do not depend on the image (max |diff| ${blocked})`);
    });

    test('prefix: a prefix changes the image tokens\' values from layer 1 on, and nothing before the prefix', async () => {
      const [item] = await listImages(images);
      const img = resizeRgb(await loadImage(item.source), RES, RES, 'bicubic');
      const L = model.dims.lmLayers;
      const taps = ['lm.*.attn.v', 'image.packed'];
      const run = async (prefix: string) => {
        const p = await model.prepare({ images: [img], question: 'What is it?', prefix });
        const out = await model.forward({ ...model.imageRequest(p), taps, logitsAt: 'none' });
        return { p, out };
      };
      const plain = await run('');
      const pre = await run('a photo of a dog\n');
      const start = plain.p.tokenMap.runs[0].start;
      const shift = pre.p.tokenMap.runs[0].start - start;
      assert.ok(shift > 0, 'the prefix sits before the image');
      const ids = (p: typeof plain.p) => Array.from(p.inputIds.data, Number);
      // The prompt up to the prefix is the same tokens (the template's system turn and user role).
      const same = ids(plain.p).findIndex((t, i) => t !== ids(pre.p)[i]);
      assert.ok(same > 0 && same <= start, 'a shared head of the prompt before the prefix');
      assert.equal(maxAbsDiff(plain.out.taps.get('image.packed')!.data as Float32Array, pre.out.taps.get('image.packed')!.data as Float32Array), 0, 'the image path does not see the prefix');
      const cells = Object.values(model.imageViews(plain.p)).filter((v) => v.positions.length > 0)[0].positions;
      for (let l = 0; l < L; l++) {
        const a = plain.out.taps.get(`lm.${l}.attn.v`)!; // [1, kvHead, pos, dHead]
        const b = pre.out.taps.get(`lm.${l}.attn.v`)!;
        const [, H, lenA, D] = a.shape;
        const lenB = b.shape[2];
        const at = (t: typeof a, len: number, pos: number) => Array.from({ length: H * D }, (_, i) => Number(t.data[(Math.floor(i / D) * len + pos) * D + (i % D)]));
        let before = 0;
        for (let pos = 0; pos < same; pos++) before = Math.max(before, maxAbsDiff(at(a, lenA, pos), at(b, lenB, pos)));
        assert.ok(before < 1e-5, `layer ${l}: positions before the prefix unchanged (${before})`);
        let image = 0;
        for (const pos of Array.from(cells)) image = Math.max(image, maxAbsDiff(at(a, lenA, pos), at(b, lenB, pos + shift)));
        if (l === 0) assert.ok(image < 1e-5, `layer 0 values are projections of the image embeddings alone (${image})`);
        else assert.ok(image > 1e-4, `layer ${l}: the prefix changes the image values (${image})`);
      }
    });

    test('flow: every layer\'s values and keys plus the projector reference are probed from the store', async () => {
      const data = join(root, 'pascal5i');
      await generateSynthetic('pascal5i', data, { seed: 0, n: 8 });
      const out = join(root, 'run-flow');
      const r = await runExperiment(parseExperimentConfig({
        experiment: 'flow', model: modelDir, out, seed: 0, dtype: 'float32', threads: 1, view: 'highres',
        tasks: [{ task: 'fewshot-seg', data, fold: 'pooled', shots: 1, episodes: 'per-entry' }],
      }));
      const rows = (JSON.parse(readFileSync(join(out, 'results', 'probes.json'), 'utf8')) as { rows: { tap: string; layer: number | null; value: number }[] }).rows;
      for (const family of ['attn.v', 'attn.k']) {
        const layers = [...new Set(rows.filter((x) => x.tap.endsWith(family)).map((x) => x.layer))].sort((x, y) => x! - y!);
        assert.deepEqual(layers, span(0, model.dims.lmLayers), `${family}: every layer probed`);
      }
      assert.ok(rows.some((x) => x.tap === 'projector.out' && Number.isFinite(x.value)), 'the projector reference row');
      assert.equal(r.manifest.models[0].lmLayers, model.dims.lmLayers);
      // the stored values are the model's: one image read back equals a forward of the extraction prompt
      const fs = FeatureStore.open(join(out, 'stores', 'fewshot-seg'));
      try {
        const id = fs.images()[0];
        const p = await model.prepare({ images: [fs.image(id).source], question: '', prefix: '' });
        const fwd = await model.forward({ ...model.imageRequest(p), taps: ['lm.1.attn.v'], logitsAt: 'none' });
        const t = fwd.taps.get('lm.1.attn.v')!;
        const [, H, len, D] = t.shape;
        const grid = model.imageViews(p).highres;
        const stored = fs.read(id, 'lm.1.attn.v', { view: 'highres' });
        const expected = Array.from(grid.positions).flatMap((pos) => Array.from({ length: H * D }, (_, i) => Number(t.data[(Math.floor(i / D) * len + pos) * D + (i % D)])));
        assert.ok(maxAbsDiff(stored.data, expected) < 1e-5);
      } finally {
        fs.close();
      }
    });

    test('underutil: the values\' answers are the model\'s pooled image-token values, the MLM answers are parsed', async () => {
      const data = join(root, 'blink');
      await generateSynthetic('blink', data, { seed: 2, n: 3 });
      const out = join(root, 'run-underutil');
      await runExperiment(parseExperimentConfig({ experiment: 'underutil', model: modelDir, out, seed: 0, data, subtasks: ['Art_Style'], layers: '0,1', maxNewTokens: 2 }));
      const lines = readFileSync(join(out, 'results', 'outputs', 'underutil.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { layers: number[]; valueAnswers: string[]; parsed: string | null });
      assert.ok(lines.length >= 2);
      for (const l of lines) {
        assert.deepEqual(l.layers, [0, 1]);
        assert.ok(l.valueAnswers.every((a) => /^[A-E]$/.test(a)));
      }
    });
  });
}
