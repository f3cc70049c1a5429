// The benchmark runner on the generated tiny LLaVA-OneVision checkpoint and synthetic POPE / MME / BLINK sets:
// one prefill per image (counted at the model), cached continuation == a fresh full-prompt generation, blocking
// nothing == no blocking, blocking every image key in every layer makes answers image-independent, raw outputs
// stream to JSONL and the metrics match the outputs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { iterateDataset } from '../../src/data/index.js';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import type { PopeSample } from '../../src/data/types.js';
import { evaluateBenchmark, type EvalModel } from '../../src/eval/runner.js';
import { fullPrompt, LLAVA_ONEVISION_QWEN_1_5, popeContext } from '../../src/eval/prompts.js';
import { toBenchmarks } from '../../src/eval/results.js';
import { PopeAccumulator } from '../../src/eval/metrics.js';
import type { EvalItem } from '../../src/eval/tasks.js';
import type { EvalCondition } from '../../src/eval/conditions.js';
import { loadVisionModel } from '../../src/models/index.js';
import type { VisionLanguageModelApi } from '../../src/models/types.js';
import type { LlavaOnevision } from '../../src/models/llava_onevision/model.js';
import { span, type BlockSpec } from '../../src/models/lm/index.js';
import { writeLlavaOnevisionCheckpoint } from '../../src/models/synthetic/llava-onevision.js';
import { BenchmarksSchema } from '../../src/results/schema.js';

let root: string;
let model: VisionLanguageModelApi;
let proc: VisionLanguageModelApi; // the model is its own processor (prepare, tokenizer)
let imageForwards = 0;
let counted: EvalModel;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'kvlens-eval-'));
  const dir = writeLlavaOnevisionCheckpoint(join(root, 'model'));
  model = await loadVisionModel(dir, { threads: 1 });
  proc = model;
  // Count the calls that run the image path, independently of the runner's own counter.
  counted = {
    family: model.family, dims: model.dims, eosTokenIds: model.eosTokenIds, tokenizer: model.tokenizer,
    prepare: (i) => model.prepare(i), imageRequest: (p) => model.imageRequest(p),
    forward: (r) => { if (r.pixelValues) imageForwards++; return model.forward(r); },
    continue: (c, ids, o) => model.continue(c, ids, o),
  };
  await generateSynthetic('pope', join(root, 'pope'), { seed: 3, n: 2 });
  await generateSynthetic('mme', join(root, 'mme'), { seed: 4, n: 4 });
  await generateSynthetic('blink', join(root, 'blink'), { seed: 5, n: 2 });
});
after(async () => {
  await model.dispose();
  rmSync(root, { recursive: true, force: true });
});

const ALL_LAYERS = () => span(0, model.dims.lmLayers);
const conditions = (): EvalCondition[] => [
  { name: 'none' },
  { name: 'block-nothing', block: [{ layers: ALL_LAYERS(), keys: () => [] }, { layers: [], keys: 'all' }] },
  { name: 'block-all', block: [{ layers: ALL_LAYERS(), keys: 'all' }] },
];

interface Line { benchmark: string; condition: string; id: string; imageKey: string; tokens: number[]; output: string; truth: string; group: string; parsed: Record<string, string | null>; imageTokens: number }
const readLines = (path: string): Line[] => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);

test('POPE: one prefill per image, cached continuation == fresh generation, empty blocks == none, outputs streamed and scored', async () => {
  const out = join(root, 'out', 'pope.jsonl');
  const visionRuns = () => (model as unknown as LlavaOnevision).visionRuns; // the family's own counter of tower runs
  const runs0 = visionRuns();
  imageForwards = 0;
  const r = await evaluateBenchmark({
    model: counted, samples: iterateDataset('pope', join(root, 'pope'), { split: 'random' }),
    conditions: conditions(), maxNewTokens: 4, outputsPath: out, prefixCacheSize: 1,
  });
  assert.equal(r.items, 12, '2 images x 6 questions');
  assert.equal(r.prefills, 2);
  assert.equal(imageForwards, 2, 'the image path ran once per image, not per question or condition');
  assert.equal(visionRuns() - runs0, 2);
  assert.ok(!existsSync(`${out}.partial`));

  const lines = readLines(out);
  assert.equal(lines.length, 36);
  const by = (cond: string) => lines.filter((l) => l.condition === cond);
  const none = by('none');
  assert.deepEqual(by('block-nothing').map((l) => l.tokens), none.map((l) => l.tokens), 'blocking nothing reproduces the unblocked outputs exactly');
  assert.ok(none.every((l) => l.tokens.length >= 1 && l.tokens.length <= 4));

  // The shared-prefix path gives what a fresh full-prompt prefill + greedy decode gives.
  const samples: PopeSample[] = [];
  for await (const s of iterateDataset('pope', join(root, 'pope'), { split: 'random' })) samples.push(s as PopeSample);
  assert.equal(r.prompts.pope, fullPrompt(LLAVA_ONEVISION_QWEN_1_5.render(popeContext(samples[0].question), 1)), 'the first rendered prompt, for the manifest');
  for (const k of [0, 7]) {
    const s = samples[k];
    const p = await proc.prepare({ images: [(s.image as { path: string }).path], text: fullPrompt(LLAVA_ONEVISION_QWEN_1_5.render(popeContext(s.question), 1)) });
    const g = await model.generate({ inputIds: p.inputIds, pixelValues: p.pixelValues, imageSizes: p.imageSizes }, { maxNewTokens: 4 });
    assert.deepEqual(none[k].tokens, g.tokens[0], `item ${k}`);
  }

  // Metrics equal those recomputed from the stored outputs.
  for (const cond of ['none', 'block-all']) {
    const acc = new PopeAccumulator();
    for (const l of by(cond)) acc.add(l.group, l.truth as 'yes' | 'no', l.parsed['lmms-exact'] as 'yes' | 'no' | null);
    const c = r.conditions.find((x) => x.name === cond)!;
    assert.deepEqual(c.pope!['lmms-exact'], acc.result());
    assert.equal(c.pope!['lmms-exact'][0].n, 12);
  }
  const bench = toBenchmarks('tiny-llava-ov', r, 'llava-first-sentence');
  assert.ok(BenchmarksSchema.safeParse(bench).success);
  assert.deepEqual(bench.conditions.map((c) => [c.name, c.blockedLayers, c.pope!.parser]), [
    ['none', [], 'llava-first-sentence'], ['block-nothing', ALL_LAYERS(), 'llava-first-sentence'], ['block-all', ALL_LAYERS(), 'llava-first-sentence'],
  ]);
  assert.equal(bench.conditions[0].pope!.splits[0].gtYesRatio, 0.5);
});

test('blocking every image key in every layer: two different images, same question -> identical outputs', async () => {
  const first = (await iterateDataset('pope', join(root, 'pope'), { split: 'random', limit: 1 }).next()).value as PopeSample;
  const path = (first.image as { path: string }).path;
  const a = new Uint8Array(await sharp(path).png().toBuffer());
  const b = new Uint8Array(await sharp(path).flop().png().toBuffer()); // same size, so the same token count
  const questions = ['Is there a circle in the image?', 'Is there a square in the image?', 'What colour is the background?', 'Describe the image.'];
  const items: EvalItem[] = questions.flatMap((q, i) => [a, b].map((img, k) => ({
    benchmark: 'pope' as const, id: `q${i}-${k}`, group: 'random', imageKey: `img${k}`, images: [img], context: popeContext(q), truth: 'yes',
  })));
  const out = join(root, 'out', 'indep.jsonl');
  imageForwards = 0;
  const r = await evaluateBenchmark({ model: counted, samples: items, conditions: [conditions()[0], conditions()[2]], maxNewTokens: 6, outputsPath: out, prefixCacheSize: 2, eos: [] });
  assert.equal(r.prefills, 2, 'two images kept cached across alternating items');
  assert.equal(imageForwards, 2);
  const lines = readLines(out);
  const tokens = (cond: string, q: number, k: number) => lines.find((l) => l.condition === cond && l.id === `q${q}-${k}`)!.tokens;
  assert.equal(lines[0].imageTokens, lines[1].imageTokens);
  for (let q = 0; q < questions.length; q++) {
    assert.deepEqual(tokens('block-all', q, 0), tokens('block-all', q, 1), `question ${q}`);
    assert.equal(tokens('block-all', q, 0).length, 6);
  }
  // Not vacuous. The tiny random model's argmax barely depends on the image, so check at the logits: on the two
  // prefilled prefixes the question's logits differ unblocked and are bit-identical with the runner's block-all specs.
  const text = fullPrompt(LLAVA_ONEVISION_QWEN_1_5.render(popeContext(questions[0]), 1));
  const prefixText = LLAVA_ONEVISION_QWEN_1_5.render(popeContext(questions[0]), 1).prefix;
  const suffix = proc.tokenizer.encode(text).slice(proc.tokenizer.encode(prefixText).length);
  const logits = async (img: Uint8Array, blocked: boolean) => {
    const p = await proc.prepare({ images: [img], text: prefixText });
    const pre = await model.forward({ inputIds: p.inputIds, pixelValues: p.pixelValues, imageSizes: p.imageSizes, logitsAt: 'none' });
    const run = p.tokenMap.runs[0];
    const block = blocked ? [{ layers: ALL_LAYERS(), queries: span(pre.cache.length, pre.cache.length + suffix.length), keys: span(run.start, run.end) }] : [];
    return (await model.continue(pre.cache, [suffix], { logitsAt: 'all', block })).logits!.data;
  };
  const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
  assert.ok(maxDiff(await logits(a, false), await logits(b, false)) > 1e-4, 'the images must matter without blocking');
  assert.equal(maxDiff(await logits(a, true), await logits(b, true)), 0);
});

test('the runner blocks exactly: text queries of every call x every image key x the chosen layers; the prefix is shared', async () => {
  const calls: { past: number; n: number; block: readonly BlockSpec[] }[] = [];
  let prefixLength = 0;
  let imageRun = { start: 0, end: 0 };
  const spy: EvalModel = {
    family: model.family, dims: model.dims, eosTokenIds: model.eosTokenIds, tokenizer: model.tokenizer,
    prepare: (i) => model.prepare(i), imageRequest: (p) => model.imageRequest(p),
    forward: async (r) => {
      const out = await model.forward(r);
      prefixLength = out.cache.length;
      const ids = Array.from((r.inputIds as unknown as { data: BigInt64Array }).data, Number);
      imageRun = { start: ids.indexOf(proc.imageTokenId), end: ids.lastIndexOf(proc.imageTokenId) + 1 };
      return out;
    },
    continue: (c, ids, o) => {
      calls.push({ past: c.length, n: (ids as number[][])[0].length, block: o?.block ?? [] });
      return model.continue(c, ids, o);
    },
  };
  const s = (await iterateDataset('pope', join(root, 'pope'), { split: 'random', limit: 1 }).next()).value as PopeSample;
  const layers = [1, 3];
  const map = (await proc.prepare({ images: [(s.image as { path: string }).path], text: LLAVA_ONEVISION_QWEN_1_5.render(popeContext(s.question), 1).prefix })).tokenMap;
  const baseCells = map.entries.flatMap((e, pos) => (e?.view === 'base' && ((e.row === 0 && e.col === 0) || (e.row === 1 && e.col === 1)) ? [pos] : []));
  assert.equal(Math.max(...map.entries.map((e) => (e?.view === 'base' ? e.col : -1))), 3);
  assert.equal(baseCells.length, 2);
  await evaluateBenchmark({
    model: spy, samples: [s], maxNewTokens: 3, eos: [],
    conditions: [
      { name: 'none' },
      { name: 'some', block: [{ layers, keys: 'all' }, { layers: [5], keys: { view: 'base', positions: [0, 5] } }] },
      // The same blocks from a per-prompt function (how experiments/keys' blockSpecsForPrompt plugs in); its queries are replaced.
      { name: 'fn', blocksFor: (m) => [{ layers, keys: span(m.runs[0].start, m.runs[0].end), queries: [0] }, { layers: [5], keys: baseCells, queries: [] }] },
    ],
  });
  assert.equal(calls.length, 9, '3 conditions x (question + 2 decode steps)');
  assert.deepEqual(calls.slice(6), calls.slice(3, 6), 'blocksFor resolves to the same specs');
  assert.ok(calls.filter((c, i) => i % 3 === 0).every((c) => c.past === prefixLength), 'each condition starts from the same prefix cache');
  assert.ok(calls.slice(0, 3).every((c) => c.block.length === 0));
  for (const c of calls.slice(3, 6)) {
    const queries = span(c.past, c.past + c.n);
    assert.deepEqual(c.block[0], { layers, queries, keys: span(imageRun.start, imageRun.end) });
    // base-grid cells 0 and 5 of the 4x4 base view (56 px tile, 14 px patches): (row 0, col 0) and (row 1, col 1)
    assert.deepEqual(c.block[1], { layers: [5], queries, keys: baseCells });
  }
});

test('MME and BLINK synthetic sets: prefills per image, pairwise MME scores, BLINK macro/micro, benchmarks.json', async () => {
  async function* both() {
    yield* iterateDataset('mme', join(root, 'mme'));
    yield* iterateDataset('blink', join(root, 'blink'));
  }
  const out = join(root, 'out', 'mme-blink.jsonl');
  imageForwards = 0;
  const r = await evaluateBenchmark({ model: counted, samples: both(), conditions: conditions().slice(0, 2), maxNewTokens: 2, outputsPath: out });
  // MME: 4 images x 2 questions; BLINK: 2 Art_Style rows (3 images in one prefix) + 2 Counting rows.
  assert.equal(r.items, 12);
  assert.equal(r.prefills, 8);
  assert.equal(imageForwards, 8);
  const none = r.conditions[0];
  assert.deepEqual(none.mme!.subtasks.map((s) => [s.name, s.images]).sort(), [['existence', 2], ['scene', 2]]);
  assert.equal(none.mme!.perception, none.mme!.subtasks.reduce((a, s) => a + s.score, 0));
  assert.equal(none.mme!.cognition, 0);
  assert.deepEqual(none.blink!.subtasks.map((s) => [s.name, s.n]).sort(), [['Art Style', 2], ['Counting', 2]]);
  const lines = readLines(out).filter((l) => l.condition === 'none');
  const blinkLines = lines.filter((l) => l.benchmark === 'blink');
  const correct = blinkLines.filter((l) => l.parsed['lmms-leading-letter'] === l.truth).length;
  assert.equal(none.blink!.micro, correct / 4);
  assert.equal(none.blink!.unparsedRate, blinkLines.filter((l) => l.parsed['lmms-leading-letter'] === null).length / 4);
  // Both conditions decode the same tokens (the second blocks nothing).
  const all = readLines(out);
  assert.deepEqual(all.filter((l) => l.condition === 'block-nothing').map((l) => l.tokens), lines.map((l) => l.tokens));
  assert.ok(r.prompts.blink!.includes('<image> <image> <image>\nNote: You only need to respond with A, B without'));
  const bench = toBenchmarks('tiny', r);
  assert.equal(bench.conditions[0].mme!.parser, 'lmms-parse_pred_ans');
  assert.equal(bench.conditions[0].blink!.parser, 'lmms-leading-letter');
});

test('a failing run leaves no outputs file; bad conditions are refused before any work', async () => {
  const out = join(root, 'out', 'fail.jsonl');
  async function* broken() {
    yield* iterateDataset('pope', join(root, 'pope'), { split: 'random', limit: 2 });
    throw new Error('disk went away');
  }
  await assert.rejects(evaluateBenchmark({ model: counted, samples: broken(), conditions: [{ name: 'none' }], maxNewTokens: 1, outputsPath: out }), /disk went away/);
  assert.ok(!existsSync(out) && !existsSync(`${out}.partial`));
  const base = { model: counted, samples: [], maxNewTokens: 1 };
  await assert.rejects(evaluateBenchmark({ ...base, conditions: [{ name: 'x', block: [{ layers: [99], keys: 'all' }] }] }), /layer 99 is out of range/);
  await assert.rejects(evaluateBenchmark({ ...base, conditions: [{ name: 'a' }, { name: 'a' }] }), /used twice/);
  await assert.rejects(evaluateBenchmark({ ...base, conditions: [] }), /at least one condition/);
  await assert.rejects(evaluateBenchmark({ ...base, conditions: [{ name: 'none' }], greedy: false }), /only greedy/);
});
