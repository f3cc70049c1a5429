// blockViews 'all' on the generated tiny LLaVA-OneVision (4x4 base tile, an 8x8 high-resolution grid at 70 px): the
// keys run flags the high-res view from its own variance while the base view's result stays byte-identical; the
// blocked keys of a prompt are exactly the flagged (view, position)s of both views, high-res tokens included; 'base'
// blocks what it blocked before. And the keys run's prompt is the benchmark's: the tokens before and after the image
// equal those of the blocking run's POPE prompt.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { generateSynthetic } from '../../../src/data/synthetic/index.js';
import { blockingConditions, blockingSets } from '../../../src/experiments/blocking.js';
import { flaggedKeyBlocks, runKeyVariance, type KeyVarianceRun } from '../../../src/experiments/keys/index.js';
import { keysPrompt, runExperiment } from '../../../src/experiments/run.js';
import { resolveBlocks } from '../../../src/eval/conditions.js';
import { fullPrompt, lmmsEvalFormat, popeContext } from '../../../src/eval/prompts.js';
import { listImages } from '../../../src/extract/sources.js';
import { loadVisionModel } from '../../../src/models/index.js';
import { writeLlavaOnevisionCheckpoint, TINY_LLAVA_ONEVISION } from '../../../src/models/synthetic/llava-onevision.js';
import { resizeRgb } from '../../../src/preprocess/pil-resize.js';
import { viewGrids, type TokenMap } from '../../../src/preprocess/token-map.js';
import { loadRunDir } from '../../../src/results/rundir.js';
import type { KeyVariance } from '../../../src/results/schema.js';
import { TextTokenizer } from '../../../src/tokenizer/tokenizer.js';

const RES = 70;
const L = TINY_LLAVA_ONEVISION.text.layers;
let root: string;
let model: string;
let coco: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'kvlens-keys-views-'));
  model = writeLlavaOnevisionCheckpoint(join(root, 'model'));
  coco = join(root, 'data', 'coco');
  await generateSynthetic('coco', coco, { seed: 1, n: 5 });
  await generateSynthetic('pope', join(root, 'data', 'pope'), { seed: 2, n: 2 });
});
after(() => rmSync(root, { recursive: true, force: true }));

const omitOther = (kv: KeyVariance) => {
  const { otherViews: _, ...rest } = kv;
  return rest;
};

let allRun: KeyVarianceRun;

test('keys allViews: the high-res view is flagged from its own variance (same τ); the base view\'s result is byte-identical', { timeout: 120_000 }, async () => {
  const src = { live: { model, images: `dataset:coco:${coco}`, resolution: RES } };
  const probe = await runKeyVariance(src, { blockLayers: '-4:', allViews: true });
  const hr = probe.result.otherViews![0];
  // a τ that flags about half of the high-res positions in the block layers, so both views have flags
  const pooled = hr.layers.filter((l) => l.layer >= L - 4).flatMap((l) => l.variance).sort((a, b) => a - b);
  const tau = pooled[Math.floor(pooled.length / 2)];
  const base = await runKeyVariance(src, { blockLayers: '-4:', threshold: tau });
  allRun = await runKeyVariance(src, { blockLayers: '-4:', threshold: tau, allViews: true });
  const kv = allRun.result;
  assert.equal(JSON.stringify(omitOther(kv)), JSON.stringify(base.result), 'the main (base) view is unchanged by allViews');
  assert.equal(base.result.otherViews, undefined);
  assert.equal(kv.view, 'base');
  assert.deepEqual(kv.grid, { rows: 4, cols: 4 });
  assert.equal(kv.otherViews!.length, 1);
  const o = kv.otherViews![0];
  assert.equal(o.view, 'highres');
  assert.deepEqual(o.grid, { rows: 8, cols: 8 });
  for (const l of o.layers) {
    assert.equal(l.variance.length, 64);
    assert.deepEqual(l.inputAgnostic, l.variance.flatMap((v, p) => (v < kv.threshold.value ? [p] : [])), `high-res layer ${l.layer}: flagged = its own variance below τ`);
  }
  assert.notDeepEqual(o.layers[L - 1].variance.slice(0, 16), kv.layers[L - 1].variance, 'high-res variance is its own, not the base one');
  assert.ok(o.layers.filter((l) => l.layer >= L - 4).some((l) => l.inputAgnostic.length > 0));
  // the control: per view and layer as many positions as flagged
  for (const l of o.randomControl!.layers) assert.equal(l.positions.length, o.layers.find((x) => x.layer === l.layer)!.inputAgnostic.length);
});

/** Blocked key positions per layer of a resolved condition. */
function blockedPerLayer(blocks: readonly { layers: readonly number[]; keys: readonly number[] }[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const b of blocks) for (const l of b.layers) out.set(l, [...(out.get(l) ?? []), ...b.keys].sort((x, y) => x - y));
  return out;
}

/** Independently of viewGrid: every image token whose (view, row * cols + col) is in that view's flagged set of `layer`. */
function expectedKeys(map: TokenMap, kv: KeyVariance, layer: number, set: 'flagged' | 'random'): number[] {
  const views = [
    { view: kv.view ?? 'base', cols: kv.grid.cols, pos: set === 'flagged' ? kv.layers.find((l) => l.layer === layer)!.inputAgnostic : kv.randomControl!.layers.find((l) => l.layer === layer)!.positions },
    ...kv.otherViews!.map((o) => ({ view: o.view, cols: o.grid.cols, pos: set === 'flagged' ? o.layers.find((l) => l.layer === layer)!.inputAgnostic : o.randomControl!.layers.find((l) => l.layer === layer)!.positions })),
  ];
  const out: number[] = [];
  map.entries.forEach((e, pos) => {
    const v = e && views.find((x) => x.view === e.view);
    if (e && v && v.pos.includes(e.row * v.cols + e.col)) out.push(pos);
  });
  return out;
}

test('blockViews all: blocked keys = the flagged (view, position)s of base AND high-res tokens; base blocks what it blocked before', { timeout: 120_000 }, async () => {
  const kv = allRun.result;
  const vlm = await loadVisionModel(model);
  try {
    const [item] = await listImages(`dataset:coco:${coco}`);
    const img = resizeRgb(await item.load(), RES, RES, 'bicubic');
    const text = fullPrompt(lmmsEvalFormat(vlm.family).render(popeContext('Is there a cat in the image?'), 1));
    const { tokenMap: map } = await vlm.prepare({ images: [img], text });

    const all = blockingSets(kv, L, '-4:', 0, 'all');
    const conds = blockingConditions(['block-input-agnostic', 'block-random'], all, 'exact');
    let highresBlocked = 0;
    for (const [k, set] of [[0, 'flagged'], [1, 'random']] as const) {
      const got = blockedPerLayer(resolveBlocks(conds[k], map, L));
      for (const layer of all.layers) {
        const want = expectedKeys(map, kv, layer, set);
        assert.deepEqual(got.get(layer) ?? [], want, `${set}, layer ${layer}`);
        highresBlocked += want.filter((p) => map.entries[p]!.view === 'highres').length;
      }
    }
    assert.ok(highresBlocked > 0, 'high-resolution tokens are blocked');
    const flaggedTotal = [kv.layers, kv.otherViews![0].layers].flatMap((ls) => ls.filter((l) => l.layer >= L - 4)).reduce((a, l) => a + l.inputAgnostic.length, 0);
    assert.equal(conds[0].blockedPositions, flaggedTotal);

    // 'base': exactly today's blocks (the base view's flagged cells of each image), no high-res token
    const base = blockingSets(kv, L, '-4:', 0, 'base');
    assert.equal(base.views, undefined);
    const [bc] = blockingConditions(['block-input-agnostic'], base, 'exact');
    assert.deepEqual(resolveBlocks(bc, map, L), flaggedKeyBlocks(base.flagged, viewGrids(map, 'base'), 'exact'));
    for (const b of resolveBlocks(bc, map, L)) for (const p of b.keys) assert.equal(map.entries[p]!.view, 'base');
    // a key-variance file without the other views cannot block them
    assert.throws(() => blockingSets(omitOther(kv) as KeyVariance, L, '-4:', 0, 'all'), /only the "base" view.*allViews/);
  } finally {
    await vlm.dispose();
  }
});

test('blocking run: blockViews all computes every view in-run and is recorded; the keys prompt is the POPE benchmark prompt', { timeout: 150_000 }, async () => {
  const file = join(root, 'blocking.yaml');
  writeFileSync(file, stringify({
    experiment: 'blocking', model: 'model', out: 'runs/blocking', blockViews: 'all', gridMatch: 'nearest', maxNewTokens: 2,
    keys: { images: 'dataset:coco:data/coco', n: 3, resolution: RES, blockLayers: '-4:' },
    benchmarks: [{ name: 'pope', data: 'data/pope', splits: ['random'], limit: 2 }],
  }));
  const s = await runExperiment(file);
  const run = await loadRunDir(s.runDir);
  const kv = JSON.parse(readFileSync(join(s.runDir, 'results', 'key_variance.json'), 'utf8')) as KeyVariance;
  assert.equal(kv.otherViews?.[0].view, 'highres');
  const m = run.manifest;
  assert.match(m.notes ?? '', /Blocked views: all \(base \+ highres/);
  assert.equal((m.config!.resolved as { blockViews: string }).blockViews, 'all');
  const flagged = kv.layers.concat(kv.otherViews![0].layers as KeyVariance['layers']).filter((l) => kv.blockedLayers.includes(l.layer)).reduce((a, l) => a + l.inputAgnostic.length, 0);
  assert.equal(run.benchmarks!.conditions[1].blockedPositions, flagged);

  // The keys ran in the benchmark's rendered prompt (recorded in key_variance.json and the manifest).
  assert.equal(kv.prompt, keysPrompt(model, { prompt: 'benchmark', promptBenchmark: 'pope', question: '' }));
  assert.equal(m.prompts.keys, kv.prompt);
  const tok = await TextTokenizer.fromPretrained(model);
  const [keysBefore, keysAfter] = m.prompts.keys.split('<image>');
  const [popeBefore, popeAfter] = m.prompts.pope.split('<image>');
  assert.deepEqual(tok.encode(keysBefore), tok.encode(popeBefore), 'the same tokens before the image (chat template, system turn)');
  // after the image: the same template tokens, and with POPE's question exactly POPE's tokens
  const question = /\n(Is there a \w+ in the image\?)\n/.exec(m.prompts.pope)![1];
  const withQuestion = keysPrompt(model, { prompt: 'benchmark', promptBenchmark: 'pope', question });
  assert.deepEqual(tok.encode(withQuestion!.split('<image>')[1]), tok.encode(popeAfter));
  assert.ok(popeAfter.endsWith(keysAfter.slice(keysAfter.indexOf('\nAnswer'))));
});
