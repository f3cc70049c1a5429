// `kvlens run` end to end on the generated tiny LLaVA-OneVision (8 LM layers) and synthetic data: every experiment
// writes a valid run directory with its manifest, and the numbers that must hold do (blocking nothing == unblocked,
// blocking every image key == image-independent answers, the recorded prompts are the lmms-eval renderings, the
// 2x2 under-utilisation table agrees with the raw outputs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { loadExperimentFile, parseExperimentConfig } from '../../src/experiments/config.js';
import { runExperiment } from '../../src/experiments/run.js';
import { bestLayer, splitHeldOut, table } from '../../src/experiments/underutil.js';
import { writeLlavaOnevisionCheckpoint, TINY_LLAVA_ONEVISION } from '../../src/models/synthetic/llava-onevision.js';
import { loadRunDir } from '../../src/results/rundir.js';
import type { KeyVariance } from '../../src/results/schema.js';
import { kvlensVersion, modelConfigSha256 } from '../../src/store/index.js';

let root: string;
let model: string;
const L = TINY_LLAVA_ONEVISION.text.layers;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'kvlens-run-'));
  model = writeLlavaOnevisionCheckpoint(join(root, 'model'));
  await generateSynthetic('coco', join(root, 'data', 'coco'), { seed: 1, n: 5 });
  await generateSynthetic('pope', join(root, 'data', 'pope'), { seed: 2, n: 2 });
  await generateSynthetic('mme', join(root, 'data', 'mme'), { seed: 3, n: 2 });
  await generateSynthetic('blink', join(root, 'data', 'blink'), { seed: 4, n: 4 });
  await generateSynthetic('pascal5i', join(root, 'data', 'pascal5i'), { seed: 5, n: 8 });
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Write an experiment file with relative paths (resolved against its folder) and load it. */
function experiment(name: string, fields: Record<string, unknown>): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(file, stringify({ model: 'model', out: `runs/${name}`, ...fields }));
  return file;
}

const readJsonl = (p: string) => readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

test('config: relative paths resolve against the file, defaults are filled, bad fields are named', () => {
  const file = experiment('cfg', { experiment: 'keys', images: 'dataset:coco:data/coco', n: 5, resolution: 70 });
  const { config, sha256 } = loadExperimentFile(file);
  assert.equal(config.experiment, 'keys');
  assert.equal(config.model, join(root, 'model'));
  assert.equal(config.out, join(root, 'runs', 'cfg'));
  if (config.experiment !== 'keys') return;
  assert.equal(config.images, `dataset:coco:${join(root, 'data', 'coco')}`);
  // view unset: resolved against the model at run time ('base' where it has one, else its one grid; experiments/model.ts)
  assert.deepEqual([config.threshold, config.blockLayers, config.view, config.statistic, config.seed], ['auto', '-10:', undefined, 'sum', 0]);
  assert.match(sha256, /^[0-9a-f]{64}$/);
  assert.throws(() => loadExperimentFile(experiment('bad1', { experiment: 'keys', images: 'x', n: -1 })), /field "n"/);
  assert.throws(() => loadExperimentFile(experiment('bad2', { experiment: 'nope' })), /field "experiment" must be one of flow, keys, blocking/);
  assert.throws(() => loadExperimentFile(experiment('bad3', { experiment: 'blocking', benchmarks: [{ name: 'pope', data: 'd' }] })), /exactly one of keyVariance/);
  assert.throws(() => loadExperimentFile(experiment('bad4', { experiment: 'flow', tasks: [{ task: 'fewshot-seg', data: 'd', typo: 1 }] })), /tasks\.0/);
});

let keyVariancePath: string;

test('keys: variance per layer and position over N images at a fixed resolution, threshold and flagged positions recorded', { timeout: 60_000 }, async () => {
  const s = await runExperiment(experiment('keys', { experiment: 'keys', images: 'dataset:coco:data/coco', n: 4, resolution: 70, blockLayers: '-4:' }));
  const run = await loadRunDir(s.runDir);
  const kv = run.keyVariance!;
  assert.equal(kv.nImages, 4);
  assert.deepEqual(kv.layers.map((l) => l.layer), Array.from({ length: L }, (_, i) => i));
  assert.deepEqual(kv.blockedLayers, [4, 5, 6, 7]);
  assert.deepEqual(kv.grid, { rows: 4, cols: 4 });
  for (const l of kv.layers) {
    assert.deepEqual(l.inputAgnostic, l.variance.flatMap((v, p) => (v < kv.threshold.value ? [p] : [])), `layer ${l.layer}: flagged = below threshold`);
    assert.equal(l.histogram.counts.reduce((a, b) => a + b, 0), 16);
  }
  // The manifest says what produced it.
  const m = run.manifest;
  assert.equal(m.models[0].configHash, `sha256:${modelConfigSha256(model)}`);
  assert.equal(m.models[0].lmLayers, L);
  assert.equal(m.kvlensVersion, kvlensVersion());
  assert.match(m.datasets[0].hash, /^sha256:[0-9a-f]{64}$/);
  assert.equal(m.datasets[0].name, 'coco');
  assert.ok(m.prompts.extraction.includes('<image>'));
  assert.ok(m.timings.keys > 0);
  assert.equal(m.config!.sha256.length, 64);
  assert.ok(existsSync(join(s.runDir, 'experiment.yaml')));
  keyVariancePath = join(s.runDir, 'results', 'key_variance.json');
});

test('blocking: none / input-agnostic / random on POPE, MME, BLINK; prompts are the lmms-eval renderings; empty flagged sets reproduce the unblocked answers', { timeout: 90_000 }, async () => {
  const benchmarks = [
    { name: 'pope', data: 'data/pope', splits: ['random', 'adversarial'] },
    { name: 'mme', data: 'data/mme' },
    { name: 'blink', data: 'data/blink', subset: 'Counting', limit: 2 },
  ];
  const s = await runExperiment(experiment('blocking', { experiment: 'blocking', keyVariance: keyVariancePath, benchmarks, maxNewTokens: 3, blockLayers: '-4:' }));
  const run = await loadRunDir(s.runDir);
  const b = run.benchmarks!;
  assert.deepEqual(b.conditions.map((c) => c.name), ['none', 'block-input-agnostic', 'block-random']);
  const kv = JSON.parse(readFileSync(keyVariancePath, 'utf8')) as KeyVariance;
  const flaggedCount = kv.layers.filter((l) => l.layer >= 4).reduce((a, l) => a + l.inputAgnostic.length, 0);
  assert.equal(b.conditions[1].blockedPositions, flaggedCount);
  assert.equal(b.conditions[2].blockedPositions, flaggedCount, 'the control blocks as many keys');
  assert.deepEqual(b.conditions[1].blockedLayers, [4, 5, 6, 7]);
  for (const c of b.conditions) {
    assert.deepEqual(c.pope!.splits.map((x) => [x.split, x.n]), [['random', 12], ['adversarial', 12]]);
    assert.ok(c.mme && c.blink);
  }
  // Prompt snapshots: exactly lmms-eval's llava_onevision (conv_template qwen_1_5) renderings of the first items.
  const m = run.manifest;
  assert.equal(m.prompts.pope, '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\nIs there a '
    + `${/Is there a (\w+) in the image\?/.exec(m.prompts.pope)![1]} in the image?\nAnswer the question using a single word or phrase.<|im_end|>\n<|im_start|>assistant\n`);
  assert.match(m.prompts.mme, /^<\|im_start\|>system\nYou are a helpful assistant\.<\|im_end\|>\n<\|im_start\|>user\n<image>\nIs there a \w+ in this image\?\nAnswer the question using a single word or phrase\.<\|im_end\|>\n<\|im_start\|>assistant\n$/);
  assert.equal(m.prompts.blink, '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n'
    + 'Note: You only need to respond with A, B, C, D without providing any additional information.\n'
    + 'How many shapes are in the image?\nSelect from the following choices.\n(A) 1\n(B) 2\n(C) 3\n(D) 4<|im_end|>\n<|im_start|>assistant\n');
  assert.deepEqual(m.datasets.map((d) => d.name), ['pope', 'mme', 'blink']);
  // The raw outputs back the metrics: one line per (question, condition).
  const pope = readJsonl(join(s.runDir, 'results', 'outputs', 'pope.jsonl'));
  assert.equal(pope.length, 24 * 3);

  // Blocking nothing reproduces the unblocked answers exactly: a key-variance file with no flagged positions.
  const empty: KeyVariance = { ...kv, layers: kv.layers.map((l) => ({ ...l, inputAgnostic: [] })), randomControl: { seed: 0, layers: kv.blockedLayers.map((layer) => ({ layer, positions: [] })) } };
  const emptyPath = join(root, 'kv-empty.json');
  writeFileSync(emptyPath, JSON.stringify(empty));
  const e = await runExperiment(experiment('blocking-empty', { experiment: 'blocking', keyVariance: emptyPath, benchmarks: benchmarks.slice(0, 1), maxNewTokens: 3, blockLayers: '-4:' }));
  const lines = readJsonl(join(e.runDir, 'results', 'outputs', 'pope.jsonl'));
  const tokens = (cond: string) => lines.filter((l) => l.condition === cond).map((l) => l.tokens);
  assert.deepEqual(tokens('block-input-agnostic'), tokens('none'));
  assert.deepEqual(tokens('block-random'), tokens('none'));
  assert.deepEqual(tokens('none'), pope.filter((l) => l.condition === 'none').map((l) => l.tokens), 'the same model and prompts give the same answers in another run');
});

test('blocking every image key (every position, every layer): answers independent of the image', { timeout: 60_000 }, async () => {
  // Two copies of one POPE set that differ only in their pictures (same size, so the same token count and positions):
  // image i of the second is image i+1 of the first.
  const src = join(root, 'data', 'pope');
  const sets = [join(root, 'data', 'pope-a'), join(root, 'data', 'pope-b')];
  const names = readdirSync(join(src, 'val2014')).sort();
  for (const [k, dir] of sets.entries()) {
    cpSync(join(src, 'output'), join(dir, 'output'), { recursive: true });
    mkdirSync(join(dir, 'val2014'), { recursive: true });
    for (const [i, f] of names.entries()) {
      await sharp(join(src, 'val2014', names[(i + k) % names.length])).resize(64, 48, { fit: 'fill' }).jpeg().toFile(join(dir, 'val2014', f));
    }
  }
  const outs: Record<string, unknown[]>[] = [];
  for (const [k, data] of sets.entries()) {
    const s = await runExperiment(experiment(`blockall-${k}`, {
      experiment: 'blocking', keyVariance: keyVariancePath, blockLayers: '0-7', conditions: ['none', 'block-all-image'],
      benchmarks: [{ name: 'pope', data, splits: ['random'] }], maxNewTokens: 4,
    }));
    const lines = readJsonl(join(s.runDir, 'results', 'outputs', 'pope.jsonl'));
    const b = (await loadRunDir(s.runDir)).benchmarks!;
    assert.deepEqual(b.conditions[1].blockedLayers, Array.from({ length: L }, (_, i) => i));
    outs.push(Object.fromEntries(['none', 'block-all-image'].map((c) => [c, lines.filter((l) => l.condition === c).map((l) => l.tokens)])));
  }
  assert.deepEqual(outs[1]['block-all-image'], outs[0]['block-all-image'], 'same questions, other images, every image key blocked everywhere: the same answers');
  assert.equal(outs[0]['block-all-image'].length, 12);
});

test('underutil: Art Style questions from pooled values vs the MLM; the 2x2 table matches the raw outputs at the held-out layer', { timeout: 60_000 }, async () => {
  const s = await runExperiment(experiment('underutil', { experiment: 'underutil', data: 'data/blink', maxNewTokens: 2, seed: 3, layerChoice: 'split', encode: 'joint' }));
  const run = await loadRunDir(s.runDir);
  const u = run.underutil!;
  assert.deepEqual(u.subtasks.map((x) => x.name), ['Art Style'], 'only the image-comparison subtasks present (Counting is not one)');
  const lines = readJsonl(join(s.runDir, 'results', 'outputs', 'underutil.jsonl'));
  assert.equal(lines.length, 4);
  const outcomes = lines.map((l) => ({
    id: l.id as string, subtask: l.subtask as string, mlmRight: l.parsed === l.truth,
    valueRight: (l.valueAnswers as string[]).map((a) => a === l.truth),
  }));
  assert.deepEqual(lines.map((l) => l.mlmRight), outcomes.map((o) => o.mlmRight));
  const { heldOut, scored } = splitHeldOut(outcomes, 0.5, 3);
  assert.equal(heldOut.length, 2);
  const li = bestLayer(heldOut, L);
  assert.equal(u.subtasks[0].layer, li);
  assert.deepEqual(u.subtasks[0].table, table(scored, li));
  const t = u.subtasks[0].table;
  assert.equal(t.valueRightMlmRight + t.valueRightMlmWrong + t.valueWrongMlmRight + t.valueWrongMlmWrong, 2);
  // The all-questions choice is written beside it: the best layer over all 4 questions, all 4 counted.
  const alt = u.alternatives![0];
  assert.match(alt.layerChoice, /^all:/);
  assert.equal(alt.subtasks[0].layer, bestLayer(outcomes, L));
  assert.deepEqual(alt.subtasks[0].table, table(outcomes, bestLayer(outcomes, L)));
  assert.equal(run.manifest.datasets[0].name, 'blink/Art_Style');
  assert.ok(run.manifest.prompts.blink.includes('<image> <image> <image>\nNote: You only need to respond with A, B without'));
});

test("underutil defaults (the paper's count): every question counted at the best layer over all; each image encoded alone", { timeout: 60_000 }, async () => {
  const joint = await runExperiment(experiment('underutil-joint', { experiment: 'underutil', data: 'data/blink', maxNewTokens: 2, seed: 3, encode: 'joint', heldOut: 0 }));
  const alone = await runExperiment(experiment('underutil-alone', { experiment: 'underutil', data: 'data/blink', maxNewTokens: 2, seed: 3, heldOut: 0 }));
  const uj = (await loadRunDir(joint.runDir)).underutil!;
  const ua = (await loadRunDir(alone.runDir)).underutil!;
  for (const u of [uj, ua]) {
    const t = u.subtasks[0].table;
    assert.equal(t.valueRightMlmRight + t.valueRightMlmWrong + t.valueWrongMlmRight + t.valueWrongMlmWrong, 4, 'all questions counted');
    assert.match(u.layerChoice, /^all:/);
    assert.equal(u.alternatives, undefined, 'heldOut 0: no split row');
  }
  assert.match(ua.rule, /encoded alone/);
  assert.match(uj.rule, /joint multi-image/);
  const answers = (dir: string) => readJsonl(join(dir, 'results', 'outputs', 'underutil.jsonl')).map((l) => l.similarities);
  const mlm = (dir: string) => readJsonl(join(dir, 'results', 'outputs', 'underutil.jsonl')).map((l) => l.output);
  assert.deepEqual(mlm(alone.runDir), mlm(joint.runDir), 'the MLM answers from the same joint prompt either way');
  assert.notDeepEqual(answers(alone.runDir), answers(joint.runDir), 'values of images encoded alone differ from the joint prefill (later images see earlier ones there)');
  assert.throws(() => parseExperimentConfig({ experiment: 'underutil', model: 'm', out: 'o', data: 'd', layerChoice: 'split', heldOut: 0 }), /field "heldOut": layerChoice 'split' needs heldOut > 0/);
});

test('2x2 table and held-out layer choice on hand-made outcomes', () => {
  const o = (v: boolean[], m: boolean) => ({ id: '', subtask: 's', valueRight: v, mlmRight: m });
  const items = [o([true, false], false), o([true, true], true), o([false, true], false), o([false, false], true), o([true, false], false)];
  assert.deepEqual(table(items, 0), { valueRightMlmRight: 1, valueRightMlmWrong: 2, valueWrongMlmRight: 1, valueWrongMlmWrong: 1 });
  assert.deepEqual(table(items, 1), { valueRightMlmRight: 1, valueRightMlmWrong: 1, valueWrongMlmRight: 1, valueWrongMlmWrong: 2 });
  assert.equal(bestLayer(items, 2), 0);
  assert.equal(bestLayer([o([false, true], true)], 2), 1);
  const split = splitHeldOut(items, 0.4, 7);
  assert.equal(split.heldOut.length, 2);
  assert.equal(split.scored.length, 3);
  assert.deepEqual(splitHeldOut(items, 0.4, 7), split, 'seeded');
});
