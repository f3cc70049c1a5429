// The blocking experiment's benchmark loop does no work twice: POPE's three splits ask about the same images, so each
// image is prefilled once for all splits (counted at the model), and a question repeated across splits (POPE's "yes"
// questions) is decoded once per condition — while outputs (byte for byte) and metrics equal those of the plain
// split-by-split run on the tiny LLaVA-OneVision checkpoint and synthetic POPE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { iterateDataset } from '../../src/data/index.js';
import type { PopeSample } from '../../src/data/types.js';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { evaluateBenchmark, type EvalModel } from '../../src/eval/runner.js';
import { toBenchmarks } from '../../src/eval/results.js';
import { blockingConditions, blockingSets, runBlockingBenchmarks } from '../../src/experiments/blocking.js';
import { parseExperimentConfig, type BlockingConfig } from '../../src/experiments/config.js';
import { loadVisionModel } from '../../src/models/index.js';
import type { VisionLanguageModelApi } from '../../src/models/types.js';
import { writeLlavaOnevisionCheckpoint } from '../../src/models/synthetic/llava-onevision.js';
import type { KeyVariance } from '../../src/results/schema.js';

const IMAGES = 3;
const SPLITS = ['random', 'popular', 'adversarial'] as const;
let root: string;
let model: VisionLanguageModelApi;
let imageForwards = 0;
let decodeCalls = 0;
let counted: EvalModel;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'kvlens-blocking-'));
  model = await loadVisionModel(writeLlavaOnevisionCheckpoint(join(root, 'model')), { threads: 1 });
  counted = {
    family: model.family, dims: model.dims, eosTokenIds: model.eosTokenIds, tokenizer: model.tokenizer,
    prepare: (i) => model.prepare(i), imageRequest: (p) => model.imageRequest(p),
    forward: (r) => { if (r.pixelValues) imageForwards++; return model.forward(r); },
    continue: (c, ids, o) => { decodeCalls++; return model.continue(c, ids, o); },
  };
  await generateSynthetic('pope', join(root, 'pope'), { seed: 3, n: IMAGES });
});
after(async () => {
  await model.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** A key-variance result flagging three cells of a 4x4 grid in the last two layers. */
function keyVariance(): KeyVariance {
  const L = model.dims.lmLayers;
  const layers = [L - 2, L - 1];
  return {
    model: 'tiny', tap: 'lm.{L}.attn.k', statistic: 'sum', nImages: 4, imageSource: 'test', grid: { rows: 4, cols: 4 },
    threshold: { value: 1, method: 'fixed' }, blockedLayers: layers, view: 'base',
    layers: layers.map((layer) => ({
      layer, variance: Array.from({ length: 16 }, (_, p) => ([0, 5, 10].includes(p) ? 0.5 : 2)),
      histogram: { edges: [0, 1, 2], counts: [3, 13] }, inputAgnostic: [0, 5, 10],
    })),
  };
}

test('POPE, three splits: one prefill per distinct image, repeated questions decoded once; outputs and metrics equal the split-by-split run', { timeout: 120_000 }, async () => {
  const kvPath = join(root, 'key_variance.json');
  const kv = keyVariance();
  writeFileSync(kvPath, JSON.stringify(kv));
  const cfg = parseExperimentConfig({
    experiment: 'blocking', model: join(root, 'model'), out: join(root, 'run'), keyVariance: kvPath, maxNewTokens: 3,
    conditions: ['none', 'block-input-agnostic', 'block-all-image'], benchmarks: [{ name: 'pope', data: join(root, 'pope'), splits: [...SPLITS] }],
  }) as BlockingConfig;

  imageForwards = 0;
  decodeCalls = 0;
  const run = await runBlockingBenchmarks(cfg, kv, counted, cfg.out, 'tiny');
  const shared = { forwards: imageForwards, decodes: decodeCalls };
  const items = IMAGES * 6 * SPLITS.length;
  assert.equal(run.result.items, items);
  assert.equal(shared.forwards, IMAGES, 'each distinct image is prefilled once for all splits and conditions');
  assert.equal(run.result.prefills, IMAGES);
  // A question asked again about the same image (POPE's "yes" questions are the same text in every split, some
  // negatives too) is decoded once per condition.
  const asked = new Set<string>();
  for (const split of SPLITS) for await (const s of iterateDataset('pope', join(root, 'pope'), { split }) as AsyncIterable<PopeSample>) asked.add(`${s.imageFile}\u0000${s.question}`);
  assert.ok(items - asked.size >= IMAGES * 3 * (SPLITS.length - 1));
  assert.equal(run.result.reusedAnswers, (items - asked.size) * cfg.conditions.length);

  // The reference: the plain runner over the splits one after another (what the experiment did before).
  imageForwards = 0;
  decodeCalls = 0;
  async function* splitBySplit() {
    for (const split of SPLITS) yield* iterateDataset('pope', join(root, 'pope'), { split });
  }
  const conditions = blockingConditions(cfg.conditions, blockingSets(kv, model.dims.lmLayers, cfg.blockLayers, cfg.seed), cfg.gridMatch);
  const refPath = join(root, 'reference.jsonl');
  const ref = await evaluateBenchmark({ model: counted, samples: splitBySplit(), conditions, maxNewTokens: cfg.maxNewTokens, outputsPath: refPath, prefixCacheSize: cfg.prefixCacheSize });
  assert.equal(imageForwards, IMAGES * SPLITS.length, 'the split-by-split run prefills every image once per split');
  assert.equal(ref.reusedAnswers, 0);
  assert.ok(shared.decodes < decodeCalls, `fewer decoding calls (${shared.decodes} vs ${decodeCalls})`);

  assert.equal(readFileSync(join(cfg.out, 'results', 'outputs', 'pope.jsonl'), 'utf8'), readFileSync(refPath, 'utf8'), 'the same raw outputs, in the same order');
  assert.deepEqual(run.result.conditions, ref.conditions);
  assert.deepEqual(run.benchmarks, toBenchmarks('tiny', ref, cfg.popeParser));
  assert.deepEqual(run.result.conditions[0].pope!['lmms-exact'].map((s) => [s.split, s.n]), SPLITS.map((s) => [s, IMAGES * 6]));
});
