// The paper's presets (examples/paper/<model>/<result>.yaml): every preset loads, and its resolved defaults equal the
// table in docs/paper-presets.md (which in turn is the paper's protocol); the core protocol numbers are also asserted
// here directly, so editing the docs and a preset together cannot drop them silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadExperimentFile, type ExperimentConfig } from '../../src/experiments/config.js';
import { selectLayers } from '../../src/taps/names.js';
import { encoderRows, type EncoderRow } from '../../src/experiments/encoder-rows.js';

let root = fileURLToPath(new URL('.', import.meta.url));
while (!readdirSync(root).includes('examples')) root = join(root, '..');
const PAPER = join(root, 'examples', 'paper');

/** The three models of the paper: LM depth. */
export const PAPER_MODELS: Record<string, { layers: number }> = {
  'llava-onevision-7b': { layers: 28 }, 'qwen2.5-vl-7b': { layers: 28 }, 'llama3-llava-next-8b': { layers: 32 },
};
export const PAPER_RESULTS = ['fig2-flow', 'table1-encoders', 'table3-blocking', 'table4-prefix-bdd', 'table4-prefix-refcoco', 'blink-underutil'];

interface Row { preset: string; models: string[] | '*'; field: string; value: string }

function docRows(): Row[] {
  const text = readFileSync(join(root, 'docs', 'paper-presets.md'), 'utf8');
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    const m = /^\| ([a-z0-9-]+) \| ([^|]+) \| `([^`]+)` \| `([^`]+)` \|/.exec(line);
    if (m) rows.push({ preset: m[1], models: m[2].trim() === '*' ? '*' : m[2].split(',').map((s) => s.trim()), field: m[3], value: m[4] });
  }
  return rows;
}

/** The real checkpoints' vision_feature_layer and tower depth (their config.json), for resolved:encoderTaps. */
const REAL_VISION: Record<string, { vision_feature_layer: number; vision_config: { num_hidden_layers: number } }> = {
  'llava-onevision-7b': { vision_feature_layer: -1, vision_config: { num_hidden_layers: 26 } },
  'llama3-llava-next-8b': { vision_feature_layer: -2, vision_config: { num_hidden_layers: 24 } },
};

async function encoderTaps(cfg: ExperimentConfig, model: string): Promise<string[] | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-preset-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(REAL_VISION[model] ?? {}));
    const c = cfg as { encoderBaseline?: string; siglip?: string; encoderRows: EncoderRow[] };
    return (await encoderRows(dir, c.encoderBaseline ?? c.siglip, c.encoderRows))?.taps;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Value at a path "a.b", "list[key=value].c", "resolved:blockedLayers" or "resolved:encoderTaps". */
async function at(cfg: ExperimentConfig, field: string, model: string): Promise<unknown> {
  if (field === 'resolved:encoderTaps') return encoderTaps(cfg, model);
  if (field === 'resolved:blockedLayers') {
    const c = cfg as { keys?: { blockLayers: string }; blockLayers?: string };
    return selectLayers(c.blockLayers ?? c.keys!.blockLayers, PAPER_MODELS[model].layers, field);
  }
  let v: unknown = cfg;
  for (const seg of field.split('.')) {
    const m = /^([^[]+)(?:\[([^=]+)=([^\]]+)\])?$/.exec(seg);
    assert.ok(m, `bad path segment ${seg}`);
    v = (v as Record<string, unknown> | undefined)?.[m[1]];
    if (m[2]) v = (v as Record<string, unknown>[] | undefined)?.find((x) => String(x[m[2]]) === m[3]);
  }
  return v;
}

function presets(): { model: string; result: string; file: string; cfg: ExperimentConfig }[] {
  return Object.keys(PAPER_MODELS).flatMap((model) => PAPER_RESULTS.map((result) => {
    const file = join(PAPER, model, `${result}.yaml`);
    return { model, result, file, cfg: loadExperimentFile(file).config };
  }));
}

test('one preset per paper result x model, nothing else in examples/paper', () => {
  for (const model of Object.keys(PAPER_MODELS)) {
    assert.deepEqual(readdirSync(join(PAPER, model)).sort(), PAPER_RESULTS.map((r) => `${r}.yaml`).sort(), model);
  }
  assert.deepEqual(readdirSync(PAPER).sort(), Object.keys(PAPER_MODELS).sort());
});

test('every preset resolves to the values in docs/paper-presets.md', async () => {
  const rows = docRows();
  assert.ok(rows.length > 40, `the docs table has ${rows.length} rows`);
  const all = presets();
  for (const row of rows) assert.ok(PAPER_RESULTS.includes(row.preset), `docs row for unknown preset ${row.preset}`);
  for (const p of all) {
    const mine = rows.filter((r) => r.preset === p.result && (r.models === '*' || r.models.includes(p.model)));
    assert.ok(mine.length >= 3, `${p.model}/${p.result}: only ${mine.length} rows in the docs table`);
    for (const r of mine) {
      const expected = JSON.parse(r.value.replaceAll('<dir>', dirname(p.file)).replace(/"([^"]*\/\.\.\/[^"]*)"/g, (_, s: string) => JSON.stringify(join(s))));
      assert.deepEqual(await at(p.cfg, r.field, p.model), expected, `${p.model}/${p.result}: ${r.field}`);
    }
  }
});

test('the protocol numbers themselves: 5 shots, 1000 episodes x 4 folds, tau 450 for LLaVA-OV 7B, last 10 layers, all Art Style questions', () => {
  for (const p of presets()) {
    const c = p.cfg as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    if (c.experiment === 'flow') {
      const fs = c.tasks.find((t: { task: string }) => t.task === 'fewshot-seg');
      assert.deepEqual([fs.shots, fs.episodes, fs.fold], [5, 1000, 'all'], p.file);
      assert.deepEqual(c.tasks.map((t: { task: string }) => t.task).sort(), ['correspondence', 'coseg', 'fewshot-seg', 'propagation', 'refseg', 'semseg']);
    }
    if (c.experiment === 'blocking') {
      assert.equal(c.keys.n, 1000);
      assert.deepEqual(selectLayers(c.keys.blockLayers, PAPER_MODELS[p.model].layers, 'x').length, 10);
      assert.equal(selectLayers(c.keys.blockLayers, PAPER_MODELS[p.model].layers, 'x').at(-1), PAPER_MODELS[p.model].layers - 1);
      if (p.model === 'llava-onevision-7b') assert.equal(c.keys.threshold, 450);
      assert.equal(c.blockViews, 'base', 'base-tile keys only (the paper leaves it open; all is the option)');
      assert.deepEqual([c.keys.prompt, c.keys.promptBenchmark], ['benchmark', 'pope'], 'key variance in the benchmark prompt');
    }
    if (c.experiment === 'underutil') {
      assert.equal(c.layerChoice, 'all', 'every question counted');
      assert.deepEqual(c.subtasks, ['Art_Style']);
    }
    if (p.result === 'table4-prefix-bdd') assert.deepEqual(c.task.select, { timeofday: ['night'], scene: ['highway'] });
  }
});
