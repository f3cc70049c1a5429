// The prefix experiment extracts nothing twice (tiny LLaVA-OneVision, synthetic Pascal-5i): after a flow run over the
// same task into the same stores folder, the "none" condition reads the flow's store, and a condition whose text
// before the image equals an earlier one's takes its store and rows — with prefix.json equal to a run that extracts
// every condition afresh. Extractions are counted on the progress channel (one "extract <store>" start each).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { runExperiment } from '../../src/experiments/run.js';
import { writeLlavaOnevisionCheckpoint } from '../../src/models/synthetic/llava-onevision.js';
import { loadRunDir } from '../../src/results/rundir.js';
import { withProgress } from '../../src/util/progress.js';

let root: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'kvlens-prefix-'));
  writeLlavaOnevisionCheckpoint(join(root, 'model'));
  await generateSynthetic('pascal5i', join(root, 'data', 'pascal5i'), { seed: 5, n: 10 });
});
after(() => rmSync(root, { recursive: true, force: true }));

function experiment(name: string, fields: Record<string, unknown>): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(file, stringify({ model: 'model', out: `runs/${name}`, dtype: 'float32', threads: 2, layers: '-2:', view: 'highres', seed: 4, ...fields }));
  return file;
}

/** Run an experiment file; returns its run dir and the stores it started extracting. */
async function counted(file: string): Promise<{ runDir: string; extracted: string[] }> {
  const extracted: string[] = [];
  const s = await withProgress((e) => { if (e.step.startsWith('extract ') && e.done === 0) extracted.push(e.step.slice(8)); }, () => runExperiment(file));
  return { runDir: s.runDir, extracted };
}

const TASK = { task: 'fewshot-seg', data: 'data/pascal5i', fold: 'pooled', shots: 1, episodes: 'per-entry' };
// random's literal equals correct's: the same tokens before every image.
const PREFIXES = { correct: 'shapes on a plain background', random: 'shapes on a plain background', incorrect: 'night highway' };

test('prefix after a flow over the same task: "none" reads the flow store, equal texts share a store; prefix.json equals a fresh run', { timeout: 180_000 }, async () => {
  const fresh = await counted(experiment('prefix-fresh', { experiment: 'prefix', task: TASK, prefixes: PREFIXES, stores: 'fresh-stores' }));
  assert.deepEqual(fresh.extracted, ['prefix-none', 'prefix-correct', 'prefix-incorrect'], 'random takes correct\'s store');

  const flow = await counted(experiment('flow', { experiment: 'flow', tasks: [TASK], lmTaps: ['values', 'keys'], projector: true, stores: 'shared-stores' }));
  assert.deepEqual(flow.extracted, ['fewshot-seg']);
  const shared = await counted(experiment('prefix-shared', { experiment: 'prefix', task: TASK, prefixes: PREFIXES, stores: 'shared-stores' }));
  assert.deepEqual(shared.extracted, ['prefix-correct', 'prefix-incorrect'], 'none is not extracted again');

  const a = await loadRunDir(fresh.runDir);
  const b = await loadRunDir(shared.runDir);
  assert.deepEqual(b.prefix, a.prefix, 'the same rows for every condition');
  assert.ok(a.prefix!.conditions.every((c) => c.rows.length > 0));
  assert.deepEqual(b.manifest.prompts, a.manifest.prompts);
  assert.deepEqual(a.prefix!.conditions[2].rows, a.prefix!.conditions[1].rows);

  const stores = join(root, 'shared-stores');
  assert.ok(lstatSync(join(stores, 'prefix-none')).isSymbolicLink());
  assert.equal(realpathSync(join(stores, 'prefix-none')), realpathSync(join(stores, 'fewshot-seg')));
  assert.equal(realpathSync(join(stores, 'prefix-random')), realpathSync(join(stores, 'prefix-correct')));
  assert.ok(String(b.manifest.notes).includes('Not extracted again (2 of 4 conditions extracted)'), String(b.manifest.notes));

  // Run again into the same stores: the links still qualify, nothing is extracted; prefix.json is unchanged.
  const again = await counted(experiment('prefix-again', { experiment: 'prefix', task: TASK, prefixes: PREFIXES, stores: 'shared-stores' }));
  assert.deepEqual(again.extracted.filter((s) => s === 'prefix-none'), []);
  assert.deepEqual((await loadRunDir(again.runDir)).prefix, a.prefix);
  assert.equal(readFileSync(join(again.runDir, 'results', 'prefix.json'), 'utf8'), readFileSync(join(fresh.runDir, 'results', 'prefix.json'), 'utf8'));
});

test('a flow store with other layers is not reused for "none"', { timeout: 120_000 }, async () => {
  await counted(experiment('flow-last', { experiment: 'flow', tasks: [TASK], layers: '-1:', lmTaps: ['values'], projector: false, stores: 'other-stores' }));
  const p = await counted(experiment('prefix-other', { experiment: 'prefix', task: TASK, prefixes: PREFIXES, stores: 'other-stores' }));
  assert.deepEqual(p.extracted, ['prefix-none', 'prefix-correct', 'prefix-incorrect']);
  assert.ok(!lstatSync(join(root, 'other-stores', 'prefix-none')).isSymbolicLink());
});

test('a flow store made under other image-processor settings or another chat template is not reused for "none"', { timeout: 180_000 }, async () => {
  await counted(experiment('flow-pp', { experiment: 'flow', tasks: [TASK], lmTaps: ['values', 'keys'], projector: true, stores: 'pp-stores' }));
  const settings = join(root, 'model', 'preprocessor_config.json');
  const original = readFileSync(settings, 'utf8');
  try {
    // Same model (config.json and weights), edited image-processor settings file: other numbers may follow.
    writeFileSync(settings, JSON.stringify({ ...JSON.parse(original), kvlens_test_edit: 1 }, null, 2));
    const p = await counted(experiment('prefix-pp', { experiment: 'prefix', task: TASK, prefixes: PREFIXES, stores: 'pp-stores' }));
    assert.deepEqual(p.extracted, ['prefix-none', 'prefix-correct', 'prefix-incorrect']);
  } finally {
    writeFileSync(settings, original);
  }
  await counted(experiment('flow-tpl', { experiment: 'flow', tasks: [TASK], lmTaps: ['values', 'keys'], projector: true, stores: 'tpl-stores' }));
  const template = join(root, 'model', 'chat_template.json');
  const hadTemplate = existsSync(template) ? readFileSync(template, 'utf8') : undefined;
  try {
    // A chat template file added beside the checkpoint changes the rendered prompt (template discovery reads it first).
    writeFileSync(template, JSON.stringify({ chat_template: '{% for m in messages %}{{ m.role }}: {% for c in m.content %}{% if c.type == "image" %}<image>{% else %}{{ c.text }}{% endif %}{% endfor %}\n{% endfor %}assistant:' }));
    const p = await counted(experiment('prefix-tpl', { experiment: 'prefix', task: TASK, prefixes: PREFIXES, stores: 'tpl-stores' }));
    assert.ok(p.extracted.includes('prefix-none'), `none extracted again under another chat template: ${p.extracted.join(', ')}`);
  } finally {
    if (hadTemplate === undefined) rmSync(template, { force: true });
    else writeFileSync(template, hadTemplate);
  }
});
