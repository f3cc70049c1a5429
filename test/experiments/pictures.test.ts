// The pictures a run writes (issue 16): sample PNGs catalogued in samples/index.json, key-variance maps, and the
// head-averaged text -> image attention, checked against the model's own attention-probability tap on the tiny
// checkpoints of every family.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { textImageAttention, writeAttentionPictures } from '../../src/experiments/attention-pictures.js';
import { addSamples, paintOver, panelsPng } from '../../src/experiments/pictures.js';
import { keysPictureLayers, keysPictures } from '../../src/experiments/run-pictures.js';
import { parseExperimentConfig } from '../../src/experiments/config.js';
import { loadVisionModel } from '../../src/models/index.js';
import { TINY_MODELS } from '../../src/models/synthetic/index.js';
import { loadRunDir, readAttentionFile, writeRun } from '../../src/results/rundir.js';
import type { KeyVariance } from '../../src/results/schema.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-pictures-'));
const manifest = { experiment: 'x', kvlensVersion: '0', createdAt: 'now', models: [{ id: 'm', configHash: 'h', lmLayers: 2 }], datasets: [], prompts: {}, seeds: [0], dtype: 'f32', device: 'cpu', timings: {} };

/** A 64x48 RGB test photo: left half red, right half blue. */
function photo() {
  const width = 64, height = 48;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(x < 32 ? [200, 20, 20] : [20, 20, 200], (y * width + x) * 3);
  return { width, height, data };
}

test('paintOver blends each token cell over its share of the photo; panelsPng lays panels side by side', async () => {
  const p = photo();
  const out = paintOver(p, { rows: 2, cols: 2, color: (t) => (t === 3 ? [0, 255, 0, 0.5] : undefined) });
  const px = (img: { width: number; data: Uint8Array }, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
  assert.deepEqual(px(out, 10, 10), [200, 20, 20], 'untouched cell keeps the photo');
  assert.deepEqual(px(out, 50, 40), [10, 138, 100], 'bottom-right cell: half photo (blue), half green');
  const png = decode(await panelsPng([p, out]));
  assert.equal(png.width, 64 * 2 + 4);
  assert.equal(png.height, 48);
});

test('addSamples: PNGs in samples/ and one index.json that keeps other writers\' entries and replaces same-named ones', async () => {
  const d = tmp();
  try {
    await writeRun.manifest(d, manifest);
    const png = await panelsPng([photo()]);
    await addSamples(d, [{ png, entry: { file: 'a.png', title: 'A', kind: 'mask' } }]);
    await addSamples(d, [{ png, entry: { file: 'b.png', title: 'B', kind: 'other' } }, { png, entry: { file: 'a.png', title: 'A2', kind: 'mask' } }]);
    const run = await loadRunDir(d);
    assert.deepEqual(run.samples.map((s) => [s.file, s.title]), [['b.png', 'B'], ['a.png', 'A2']]);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('keysPictures: one PNG per blocked layer, flagged positions boxed in red, listed with the threshold', async () => {
  const d = tmp();
  try {
    await writeRun.manifest(d, manifest);
    const grid = { rows: 2, cols: 3 };
    const layer = (l: number) => ({ layer: l, variance: [0, 1, 2, 3, 4, 5 + l], histogram: { edges: [0, 10], counts: [6] }, inputAgnostic: [0] });
    const kv: KeyVariance = {
      model: 'm', tap: 'lm.{L}.attn.k', statistic: 'sum', nImages: 3, imageSource: 'x', grid, threshold: { value: 0.5, method: 'fixed' },
      blockedLayers: [2, 3], layers: [0, 1, 2, 3].map(layer),
    };
    assert.deepEqual(keysPictureLayers(kv), [2, 3]);
    assert.deepEqual(keysPictureLayers({ ...kv, blockedLayers: [] }, 2), [0, 3]);
    const files = await keysPictures(d, kv);
    assert.deepEqual(files, ['keys-variance-layer2.png', 'keys-variance-layer3.png']);
    const img = decode(readFileSync(join(d, 'samples', files[0])));
    const cell = img.width / 3;
    const at = (x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * img.channels, (y * img.width + x) * img.channels + 3));
    assert.deepEqual(at(0, 0), [225, 30, 40], 'position 0 (flagged) has a red box');
    assert.deepEqual(at(Math.floor(cell / 2), Math.floor(cell / 2)), [68, 1, 84], 'lowest variance: dark end of the ramp');
    assert.deepEqual(at(img.width - Math.floor(cell / 2), img.height - Math.floor(cell / 2)), [253, 231, 37], 'highest: yellow end');
    const run = await loadRunDir(d);
    assert.match(run.samples[0].caption ?? '', /1 position\(s\) below τ = 0\.5000/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('experiment files take pictures: {images, questions}; defaults 4 and 2; 0 allowed, negatives refused', () => {
  const base = { experiment: 'keys', model: 'm', out: 'o', images: 'i' };
  assert.deepEqual(parseExperimentConfig(base).pictures, { images: 4, questions: 2 });
  assert.deepEqual(parseExperimentConfig({ ...base, pictures: { images: 0 } }).pictures, { images: 0, questions: 2 });
  assert.throws(() => parseExperimentConfig({ ...base, pictures: { images: -1 } }), /pictures/);
  assert.throws(() => parseExperimentConfig({ ...base, pictures: { image: 1 } }), /pictures/);
});

// Attention: the written rows are the model's lm.{L}.attn.probs averaged over heads at (text token, grid position);
// each full row of the tap sums to 1, so the image part sums to at most 1.
for (const family of ['llava_onevision', 'llava_next', 'qwen2_5_vl'] as const) {
  test(`text -> image attention on the tiny ${family}: equals the model's attention tap averaged over heads`, { timeout: 120_000 }, async () => {
    const d = tmp();
    try {
      const dir = TINY_MODELS[family].write(join(d, 'model'));
      const model = await loadVisionModel(dir);
      try {
        const img = photo();
        const text = model.renderPrompt({ question: 'Is there a red square?' }, 1);
        const a = await textImageAttention(model, { imageId: 'q/1', images: [img], text });
        assert.equal(Object.keys(a.layers).length, model.dims.lmLayers);
        // Independently: one capture of every layer's probabilities, averaged over heads by hand.
        const prepared = await model.prepare({ images: [img], text });
        const grid = model.imageViews(prepared, 0)[a.view];
        assert.deepEqual(a.grid, { rows: grid.rows, cols: grid.cols });
        const taps = await model.captureTaps({ ...model.imageRequest(prepared), taps: ['lm.*.attn.probs'] });
        const seq = prepared.inputIds.shape[1];
        const q0 = seq - a.tokens.length;
        assert.ok(q0 >= Math.max(...prepared.tokenMap.runs.map((r) => r.end)), 'query tokens come after the image');
        assert.equal(a.tokens[a.tokens.length - 1], model.tokenizer.decode([Number(prepared.inputIds.data[seq - 1])]));
        for (let l = 0; l < model.dims.lmLayers; l++) {
          const t = taps.get(`lm.${l}.attn.probs`)!;
          const [, h, , k] = t.shape;
          a.layers[String(l)].forEach((row, i) => {
            const q = q0 + i;
            let full = 0;
            for (let kk = 0; kk < k; kk++) for (let hh = 0; hh < h; hh++) full += Number(t.data[(hh * seq + q) * k + kk]) / h;
            assert.ok(Math.abs(full - 1) < 1e-4, `layer ${l} token ${i}: the tap's row sums to ${full}`);
            const sum = row.reduce((s, v) => s + v, 0);
            assert.ok(sum <= 1 + 1e-6 && sum > 0, `layer ${l} token ${i}: image attention sums to ${sum}`);
            row.forEach((v, p) => {
              let m = 0;
              for (let hh = 0; hh < h; hh++) m += Number(t.data[(hh * seq + q) * k + grid.positions[p]]);
              assert.ok(Math.abs(v - m / h) < 1e-6, `layer ${l} token ${i} position ${p}: ${v} vs ${m / h}`);
            });
          });
        }
        // Written for the viewer (validated), plus a sample picture.
        await writeRun.manifest(d, manifest);
        const w = await writeAttentionPictures(model, d, [{ imageId: 'q/1', images: [img], text }], 'test');
        assert.deepEqual(w, { written: ['q/1'], notes: [] });
        const back = await readAttentionFile(d, 'q/1');
        assert.deepEqual(back!.layers, a.layers);
        const run = await loadRunDir(d);
        assert.deepEqual(run.samples.map((s) => s.file), ['attention-q_1.png']);
      } finally {
        await model.dispose();
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
}
