// `kvlens run` for the probe experiments on the tiny LLaVA-OneVision and synthetic Pascal-5i: the layer-wise flow
// (values + keys of every layer, the projector output as the reference row, the curve summary) and the prefix
// experiment (same images, same seed; the prefix changes the image values but never the projector output).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { runExperiment } from '../../src/experiments/run.js';
import { imageSeed, randomPrefix } from '../../src/experiments/prefix.js';
import { VOC_CLASSES } from '../../src/data/loaders/pascal5i.js';
import { summariseCurves } from '../../src/experiments/stores.js';
import { writeLlavaOnevisionCheckpoint, TINY_LLAVA_ONEVISION } from '../../src/models/synthetic/llava-onevision.js';
import { loadRunDir } from '../../src/results/rundir.js';
import { FeatureStore } from '../../src/store/index.js';

let root: string;
const L = TINY_LLAVA_ONEVISION.text.layers;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'kvlens-run-probes-'));
  writeLlavaOnevisionCheckpoint(join(root, 'model'));
  await generateSynthetic('pascal5i', join(root, 'data', 'pascal5i'), { seed: 5, n: 10 });
});
after(() => rmSync(root, { recursive: true, force: true }));

function experiment(name: string, fields: Record<string, unknown>): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(file, stringify({ model: 'model', out: `runs/${name}`, dtype: 'float32', threads: 2, ...fields }));
  return file;
}

const TASK = { task: 'fewshot-seg', data: 'data/pascal5i', fold: 'pooled', shots: 1, episodes: 'per-entry' };

test('flow: values and keys of every layer + the projector reference row -> probes.json with the curve summary', { timeout: 90_000 }, async () => {
  const s = await runExperiment(experiment('flow', { experiment: 'flow', tasks: [TASK] }));
  const run = await loadRunDir(s.runDir);
  const rows = run.probes!;
  const taps = new Set(rows.map((r) => r.tap));
  for (let l = 0; l < L; l++) assert.ok(taps.has(`lm.${l}.attn.v`) && taps.has(`lm.${l}.attn.k`), `layer ${l}`);
  assert.ok(rows.some((r) => r.tap === 'projector.out' && r.layer === null), 'the projector reference row');
  const probes = JSON.parse(readFileSync(join(s.runDir, 'results', 'probes.json'), 'utf8')) as { protocol: { curves: ReturnType<typeof summariseCurves> } };
  const curve = probes.protocol.curves.find((c) => c.family === 'lm.{L}.attn.v' && c.metric === 'mIoU')!;
  const v = rows.filter((r) => r.tap.endsWith('.attn.v') && r.metric === 'mIoU').sort((a, b) => a.layer! - b.layer!);
  const peak = v.reduce((b, r) => (r.value > b.value ? r : b));
  assert.deepEqual([curve.peakLayer, curve.peakValue, curve.lastLayer, curve.lastValue], [peak.layer, peak.value, L - 1, v[L - 1].value]);
  assert.equal(curve.dropAtLast, peak.value - v[L - 1].value);
  assert.equal(curve.reference['projector.out'], rows.find((r) => r.tap === 'projector.out' && r.metric === 'mIoU')!.value);
  const m = run.manifest;
  assert.equal(m.datasets[0].name, 'pascal5i');
  assert.ok(m.datasets[0].count! > 0);
  assert.ok(m.timings.extract > 0 && m.timings.probe > 0);
  assert.ok(m.prompts.extraction.includes('<image>'));
  assert.ok(existsSync(join(s.runDir, 'store')), 'the store is linked for the viewer');
});

test('summariseCurves: peak, last layer and drop from hand-made rows (seeds averaged)', () => {
  const row = (layer: number | null, value: number, seed = 0, tap = layer === null ? 'projector.out' : `lm.${layer}.attn.v`) => ({ task: 't', model: 'm', tap, layer, metric: 'acc', value, n: 1, seed });
  const c = summariseCurves([row(0, 0.2), row(1, 0.6), row(1, 0.8, 1), row(2, 0.5), row(null, 0.4)]);
  assert.equal(c.length, 1);
  assert.deepEqual(c[0], { task: 't', metric: 'acc', family: 'lm.{L}.attn.v', peakLayer: 1, peakValue: 0.7, lastLayer: 2, lastValue: 0.5, dropAtLast: 0.7 - 0.5, reference: { 'projector.out': 0.4 } });
});

test('summariseCurves: encoder-baseline taps with layers form their own family (baseline.{L}.out), apart from the LM curve', () => {
  const row = (tap: string, layer: number | null, value: number) => ({ task: 't', model: 'm', tap, layer, metric: 'acc', value, n: 1, seed: 0 });
  const c = summariseCurves([row('lm.0.attn.v', 0, 0.2), row('lm.1.attn.v', 1, 0.3), row('baseline.3.out', 3, 0.9), row('baseline.5.out', 5, 0.6), row('siglip.2.out', 2, 0.1), row('baseline.post_norm', null, 0.5)]);
  assert.deepEqual(c.map((x) => x.family), ['lm.{L}.attn.v', 'baseline.{L}.out', 'siglip.{L}.out']);
  const b = c.find((x) => x.family === 'baseline.{L}.out')!;
  assert.deepEqual([b.peakLayer, b.peakValue, b.lastLayer, b.lastValue], [3, 0.9, 5, 0.6]);
  assert.deepEqual(b.reference, { 'baseline.post_norm': 0.5 });
});

test('prefix: none / correct / random / incorrect on the same images with the same seed', { timeout: 90_000 }, async () => {
  const s = await runExperiment(experiment('prefix', {
    experiment: 'prefix', task: TASK, layers: '-2:', seed: 4, prefixes: { correct: 'shapes on a plain background', incorrect: 'night highway' },
  }));
  const run = await loadRunDir(s.runDir);
  const p = run.prefix!;
  assert.deepEqual(p.conditions.map((c) => c.name), ['none', 'correct', 'random', 'incorrect']);
  assert.deepEqual(p.conditions.map((c) => c.prefix), ['', 'shapes on a plain background\n', 'per image: a photo of a {class}\n', 'night highway\n']);
  const keyOf = (r: { tap: string; metric: string; n: number; seed: number }) => `${r.tap}|${r.metric}|${r.n}|${r.seed}`;
  const none = p.conditions[0].rows;
  assert.deepEqual(none.map((r) => r.layer).filter((l, i, a) => a.indexOf(l) === i), [L - 2, L - 1]);
  for (const c of p.conditions) assert.deepEqual(c.rows.map(keyOf), none.map(keyOf), `${c.name}: same taps, metrics, episodes and seed`);
  // The prompts differ only by the prefix before the image, and the prefix reaches the image values.
  const m = run.manifest;
  assert.ok(m.prompts['extraction.incorrect'].includes('night highway\n<image>'));
  assert.ok(!m.prompts['extraction.none'].includes('night highway'));
  const stores = ['none', 'incorrect'].map((c) => FeatureStore.open(join(s.runDir, 'stores', `prefix-${c}`)));
  try {
    const id = stores[0].images()[0];
    const a = stores[0].read(id, `lm.${L - 1}.attn.v`).data;
    const b = stores[1].read(id, `lm.${L - 1}.attn.v`).data;
    assert.equal(a.length, b.length);
    assert.ok(a.some((x, i) => Math.abs(x - b[i]) > 1e-6), 'the prefix changes the image values');
  } finally {
    for (const st of stores) st.close();
  }
});

test('prefix: per-image class-name / other-class / seeded-words prefixes from the Pascal-5i labels', { timeout: 90_000 }, async () => {
  const s = await runExperiment(experiment('prefix-labels', {
    experiment: 'prefix', task: TASK, layers: '-1:', seed: 3, prefixes: { correct: 'class-name', incorrect: 'other-class', template: 'a photo of a {class}' },
  }));
  const run = await loadRunDir(s.runDir);
  const m = run.manifest;
  // Each image's classes, read straight from the fold lists (<id>__<class, 1-based>).
  const lists = ['val', 'trn'].flatMap((split) => [0, 1, 2, 3].map((f) => join(root, 'data', 'pascal5i', 'splits', 'pascal', split, `fold${f}.txt`)));
  const truth = new Map<string, Set<string>>();
  for (const f of lists) {
    for (const line of readFileSync(f, 'utf8').split('\n').filter(Boolean)) {
      const [voc, cls] = line.trim().split('__');
      const id = `VOC2012/JPEGImages/${voc}.jpg`;
      (truth.get(id) ?? truth.set(id, new Set()).get(id)!).add(VOC_CLASSES[Number(cls) - 1]);
    }
  }
  const stores = Object.fromEntries(['none', 'correct', 'random', 'incorrect'].map((c) => [c, FeatureStore.open(join(s.runDir, 'stores', `prefix-${c}`))]));
  try {
    const ids = stores.none.images();
    assert.equal(ids.length, truth.size);
    assert.equal(stores.correct.identity.prompt.perImage, 'correct: class-name in "a photo of a {class}", separator "\\n"');
    for (const id of ids) {
      const classes = [...truth.get(id)!];
      const correct = stores.correct.image(id).prefix!;
      const incorrect = stores.incorrect.image(id).prefix!;
      const random = stores.random.image(id).prefix!;
      assert.equal(stores.none.image(id).prefix, undefined);
      for (const c of classes) {
        assert.ok(correct.includes(c), `${id}: correct prefix ${JSON.stringify(correct)} names ${c}`);
        assert.ok(!incorrect.includes(c), `${id}: incorrect prefix ${JSON.stringify(incorrect)} must not name ${c}`);
        assert.ok(m.prompts[`extraction.correct.${id}`].includes(`${correct}<image>`) && m.prompts[`extraction.correct.${id}`].includes(c), `${id}: rendered prompt`);
        assert.ok(!m.prompts[`extraction.incorrect.${id}`].includes(c));
      }
      assert.equal(correct.split(' and ').length, classes.length, `${id}: ${correct} names exactly its classes`);
      const other = /^a photo of a (\w+)\n$/.exec(incorrect)?.[1];
      assert.ok(other && (VOC_CLASSES as readonly string[]).includes(other), `incorrect is another VOC class: ${incorrect}`);
      assert.equal(random, `a photo of a ${randomPrefix(imageSeed(3, id), 2)}\n`);
      // The per-image prefix reaches the image values.
      const a = stores.none.read(id, `lm.${L - 1}.attn.v`).data;
      const b = stores.correct.read(id, `lm.${L - 1}.attn.v`).data;
      assert.ok(a.some((x, i) => Math.abs(x - b[i]) > 1e-6), `${id}: the class-name prefix changes the image values`);
    }
  } finally {
    for (const st of Object.values(stores)) st.close();
  }
  assert.deepEqual(run.prefix!.conditions.map((c) => c.rows.length), Array(4).fill(run.prefix!.conditions[0].rows.length));
});
