// The demo suite: every experiment (flow, keys, blocking, prefix, underutil) on the tiny model and synthetic data
// into ONE run directory with ONE manifest and ONE report holding every section.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { episodeTokenLabels, FewShotConfigSchema, predictQueryTokens, sampleEpisodes } from '../../src/probes/fewshot-seg.js';
import { usableSegItems } from '../../src/experiments/flow.js';
import { loadSegTruth } from '../../src/experiments/samples.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProbeFlow } from '../../src/experiments/flow.js';
import { runSuite, SUITE_ORDER } from '../../src/experiments/suite.js';
import { TINY_LLAVA_ONEVISION } from '../../src/models/synthetic/llava-onevision.js';
import { loadRunDir, readAttentionFile, readMaskFile } from '../../src/results/rundir.js';
import { FeatureStore, modelConfigSha256 } from '../../src/store/index.js';

const L = TINY_LLAVA_ONEVISION.text.layers;

/** The run's masks/, attention/ and samples/ and the report's pictures, checked against the probe and the files. */
async function checkPictures(runDir: string, out: string, seed: number, html: string): Promise<void> {
  const ids = readdirSync(join(runDir, 'masks')).map((f) => decodeURIComponent(f.replace(/\.json$/, '')));
  assert.equal(ids.length, 4, 'pictures.images defaults to 4');
  const store = FeatureStore.open(join(runDir, 'store'));
  try {
    const truth = await loadSegTruth(store, join(out, 'data', 'pascal5i'), { fold: 'pooled' });
    const usable = usableSegItems(truth.items, 1);
    const items = usable.map((u) => ({ imageId: u.storeId, classId: u.classValue }));
    const cfg = FewShotConfigSchema.parse({ shots: 1, episodes: items.length, seed });
    const episodes = sampleEpisodes(items, items.length, 1, seed);
    const labels = new Map(usable.map((u) => [u.storeId, u.labels]));
    for (const id of ids) {
      const m = (await readMaskFile(runDir, id))!;
      const ep = episodes.find((e) => e.query === id)!;
      assert.match(m.task, new RegExp(`episode ${ep.index}, fold pooled`));
      assert.equal(Object.keys(m.layers).length, L);
      for (let l = 0; l < L; l++) {
        const read = (x: string) => ({ features: store.read(x, `lm.${l}.attn.v`, { view: 'highres' }), labels: labels.get(x)! });
        const q = read(id);
        const probs = predictQueryTokens(ep.supports.map(read), q.features, ep.classId, cfg);
        assert.deepEqual(m.layers[String(l)], Array.from(probs), `${id} layer ${l}: the probe's own prediction`);
        assert.deepEqual(m.grid, { rows: q.features.rows, cols: q.features.cols });
        assert.deepEqual(m.truth, Array.from(episodeTokenLabels(q, ep.classId, cfg), (v) => (v === 255 ? 0 : v)));
      }
      // the same image has text -> image attention (extraction prompt), every layer, on the same grid
      const a = (await readAttentionFile(runDir, id))!;
      assert.deepEqual(a.grid, m.grid);
      assert.equal(Object.keys(a.layers).length, L);
      for (const rows of Object.values(a.layers)) for (const r of rows) assert.ok(r.reduce((x, y) => x + y, 0) <= 1 + 1e-6);
    }
  } finally {
    store.close();
  }
  const attention = readdirSync(join(runDir, 'attention')).map((f) => decodeURIComponent(f.replace(/\.json$/, '')));
  assert.ok(attention.some((x) => x.startsWith('pope/')) && attention.some((x) => x.startsWith('underutil/blink/')), attention.join(', '));
  const run = await loadRunDir(runDir);
  const kinds = (re: RegExp) => run.samples.filter((x) => re.test(x.file)).length;
  assert.equal(kinds(/^mask-/), 4);
  assert.ok(kinds(/^attention-pope/) >= 1 && kinds(/^attention-underutil/) >= 1 && kinds(/^keys-variance-layer\d+\.png$/) >= 1);
  for (const x of run.samples) assert.ok(html.includes(`<figure data-sample="${x.file}"><img alt=`), `report shows ${x.file}`);
  assert.match(run.manifest.notes ?? '', new RegExp(`probe masks \\(lm\\.\\{L\\}\\.attn\\.v, ${L} layer\\(s\\)\\) and ground truth for 4 image\\(s\\)`));
}

test('suite: flow + keys + blocking + prefix + underutil -> one run directory, one manifest, one report with every section', { timeout: 120_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'kvlens-suite-'));
  try {
    const seed = 7;
    const s = await runSuite({ out, seed, threads: 2, sizes: { pascal5i: 10, spair: 3, coco: 4, pope: 1, mme: 1, blink: 2 } });
    assert.equal(s.runDir, join(out, 'run'));
    const run = await loadRunDir(s.runDir); // every results file validates against its schema
    for (const [name, present] of Object.entries({ probes: run.probes, keyVariance: run.keyVariance, benchmarks: run.benchmarks, prefix: run.prefix, underutil: run.underutil })) {
      assert.ok(present, `${name} missing from the run directory`);
    }
    assert.ok(existsSync(join(s.runDir, 'results', 'outputs', 'pope.jsonl')) && existsSync(join(s.runDir, 'results', 'outputs', 'underutil.jsonl')));

    // One manifest: the tiny model, every dataset once, prompts and timings per experiment.
    const m = run.manifest;
    assert.equal(m.models[0].configHash, `sha256:${modelConfigSha256(join(out, 'model'))}`);
    assert.deepEqual(m.seeds, [seed]);
    assert.deepEqual(m.datasets.map((d) => d.name).sort(), ['blink', 'blink/Art_Style', 'coco', 'mme', 'pascal5i', 'pope', 'spair']);
    for (const e of SUITE_ORDER) assert.ok(m.timings[`experiment.${e}`] > 0, `timing of ${e}`);
    for (const k of ['flow.extraction', 'keys.extraction', 'blocking.pope', 'blocking.mme', 'blocking.blink', 'prefix.extraction.none']) assert.ok(m.prompts[k]?.includes('<image>'), k);
    const resolved = m.config!.resolved as { experiments: Record<string, { out: string; seed: number }> };
    for (const e of SUITE_ORDER) assert.deepEqual([resolved.experiments[e].out, resolved.experiments[e].seed], [s.runDir, seed], e);

    // Flow: every layer's values and keys for both tasks; the written rows are what the store gives when probed again.
    const rows = run.probes!;
    for (const task of ['pascal5i-fewshot', 'spair-correspondence']) {
      for (let l = 0; l < L; l++) assert.ok(rows.some((r) => r.task === task && r.tap === `lm.${l}.attn.v`) && rows.some((r) => r.task === task && r.tap === `lm.${l}.attn.k`), `${task} layer ${l}`);
    }
    const again = await runProbeFlow({ task: 'fewshot-seg', store: join(out, 'stores', 'fewshot-seg'), data: join(out, 'data', 'pascal5i'), taps: ['lm.*.attn.v'], layers: `${L - 1}`, view: 'highres', fold: 'pooled', shots: 1, episodes: 'per-entry', seed, model: 'x', threads: 1 });
    const miou = again.rows.find((r) => r.metric === 'mIoU')!;
    assert.equal(miou.value, rows.find((r) => r.task === 'pascal5i-fewshot' && r.tap === `lm.${L - 1}.attn.v` && r.metric === 'mIoU')!.value);

    // Keys feed blocking: the blocked positions are the key-variance run's flagged ones.
    const kv = run.keyVariance!;
    assert.equal(kv.nImages, 4);
    const flagged = kv.layers.filter((l) => kv.blockedLayers.includes(l.layer)).reduce((a, l) => a + l.inputAgnostic.length, 0);
    const conds = run.benchmarks!.conditions;
    assert.deepEqual(conds.map((c) => c.name), ['none', 'block-input-agnostic', 'block-random']);
    assert.deepEqual(conds[1].blockedLayers, kv.blockedLayers);
    assert.equal(conds[1].blockedPositions, flagged);

    // Prefix: the four conditions on the same episodes; correct prefixes name each image's own class.
    const p = run.prefix!;
    assert.deepEqual(p.conditions.map((c) => c.name), ['none', 'correct', 'random', 'incorrect']);
    for (const c of p.conditions) assert.equal(c.rows.length, p.conditions[0].rows.length);
    const store = FeatureStore.open(join(out, 'stores', 'prefix-correct'));
    try {
      for (const id of store.images()) {
        const prefix = store.image(id).prefix!;
        assert.match(prefix, /^a photo of a [a-z]+( and [a-z]+)*\n$/, id);
        assert.ok(m.prompts[`prefix.extraction.correct.${id}`].includes(`${prefix}<image>`), id);
      }
    } finally {
      store.close();
    }

    // Underutil: the 2x2 table counts every question of the raw outputs; the split alternative the held-out remainder.
    const u = run.underutil!;
    const lines = readFileSync(join(s.runDir, 'results', 'outputs', 'underutil.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l) as { truth: string; mlmRight: boolean; layers: number[]; valueAnswers: string[] });
    const { table: t, layer } = u.subtasks[0];
    const all = { valueRightMlmRight: 0, valueRightMlmWrong: 0, valueWrongMlmRight: 0, valueWrongMlmWrong: 0 };
    for (const q of lines) {
      const v = q.valueAnswers[q.layers.indexOf(layer)] === q.truth;
      all[`value${v ? 'Right' : 'Wrong'}Mlm${q.mlmRight ? 'Right' : 'Wrong'}` as keyof typeof all]++;
    }
    const total = (x: typeof all) => x.valueRightMlmRight + x.valueRightMlmWrong + x.valueWrongMlmRight + x.valueWrongMlmWrong;
    assert.equal(total(all), lines.length);
    assert.deepEqual(t, all, 'the headline table counts every question at its layer (the paper\'s rate over all questions)');
    const split = u.alternatives![0].subtasks[0].table;
    assert.ok(total(split) > 0 && total(split) < lines.length, 'the split row holds the held-out remainder only');

    // One report with every section.
    assert.deepEqual(s.report.sections.filter((x) => x !== 'run'), ['curves', 'encoders', 'key-variance', 'benchmarks', 'prefix', 'underutil', 'paper', 'samples', 'provenance']);
    const html = readFileSync(join(s.runDir, 'report', 'report.html'), 'utf8');
    for (const title of ['Input-agnostic keys', 'Benchmarks with and without blocking', 'Text-prefix comparison', 'Under-utilisation']) assert.ok(html.includes(title), title);

    // Pictures (issue 16): probe masks = the probe's own prediction for that image and layer, attention, samples.
    await checkPictures(s.runDir, out, seed, html);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
