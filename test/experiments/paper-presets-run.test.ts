// Every paper preset (examples/paper/<model>/<result>.yaml) runs end to end on the embedded tiny checkpoint of its
// model's family and synthetic data in the real layouts (BDD10K with synthetic attribute files), for all three models.
// The preset files are run as written except for the scale (image counts, episodes, generated tokens, the last 4 of
// the tiny LMs' 8 layers for 'the last 10'): the fields the smoke edit touches are listed in SMOKE below. The Table 1
// encoder baselines are tiny standalone SigLIP / CLIP towers at the presets' paths.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import type { DatasetName } from '../../src/data/index.js';
import { runExperiment } from '../../src/experiments/run.js';
import { TINY_MODELS, type TinyFamily } from '../../src/models/synthetic/index.js';
import { TINY_CLIP_TOWER, TINY_SIGLIP_TOWER, writeClipVisionCheckpoint, writeSiglipVisionCheckpoint } from '../../src/models/synthetic/vision-towers.js';
import { loadRunDir } from '../../src/results/rundir.js';

let repo = fileURLToPath(new URL('.', import.meta.url));
while (!readdirSync(repo).includes('examples')) repo = join(repo, '..');

const FAMILY: Record<string, { family: TinyFamily; ckpt: string }> = {
  'llava-onevision-7b': { family: 'llava_onevision', ckpt: 'llava-onevision-qwen2-7b-ov-hf' },
  'qwen2.5-vl-7b': { family: 'qwen2_5_vl', ckpt: 'Qwen2.5-VL-7B-Instruct' },
  'llama3-llava-next-8b': { family: 'llava_next', ckpt: 'llama3-llava-next-8b-hf' },
};
/** Data folder name under examples/paper/data -> synthetic dataset and size. */
const DATA: Record<string, [DatasetName, number]> = {
  pascal5i: ['pascal5i', 12], msrc: ['msrc', 4], 'imagenet-s': ['imagenet-s', 3], refcoco: ['refcoco', 3], 'SPair-71k': ['spair', 3],
  DAVIS: ['davis', 1], coco: ['coco', 3], POPE: ['pope', 1], MME_Benchmark_release_version: ['mme', 1], BLINK: ['blink', 2], bdd100k: ['bdd10k', 16],
};

/** The scale-only edits (and nothing else) applied to a preset for the tiny run. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function SMOKE(c: any): void {
  c.threads = 2;
  if (c.experiment === 'flow') {
    for (const t of c.tasks) if (t.task === 'fewshot-seg') Object.assign(t, { fold: 'pooled', shots: 1, episodes: 'per-entry' });
  }
  if (c.experiment === 'blocking') {
    c.keys.n = 3;
    c.keys.blockLayers = '-4:'; // the tiny LMs have 8 layers: the last 10 do not exist
    c.maxNewTokens = 3;
    for (const b of c.benchmarks) { b.limit = 2; if (b.name === 'pope') b.splits = ['random']; }
  }
  if (c.experiment === 'prefix' && c.task.task === 'refseg') c.task.limit = 3;
  if (c.experiment === 'underutil') { c.limit = 2; c.maxNewTokens = 3; }
}

let root = '';
before(async () => {
  root = mkdtempSync(join(tmpdir(), 'kvlens-paper-'));
  for (const [dir, [name, n]] of Object.entries(DATA)) await generateSynthetic(name, join(root, 'data', dir), { seed: 5, n });
  cpSync(join(root, 'data', 'POPE', 'val2014'), join(root, 'data', 'coco', 'val2014'), { recursive: true }); // POPE's imageRoot
  // ImageNet-S ships wnids only; users add ImageNet's LOC_synset_mapping.txt (wnid -> names) beside it.
  const wnids = readFileSync(join(root, 'data', 'imagenet-s', 'ImageNetS50', 'ImageNetS_categories_im50.txt'), 'utf8').trim().split('\n');
  writeFileSync(join(root, 'data', 'imagenet-s', 'LOC_synset_mapping.txt'), wnids.map((w, i) => `${w} thing${i}, object${i}`).join('\n') + '\n');
  for (const { family, ckpt } of Object.values(FAMILY)) TINY_MODELS[family].write(join(root, 'models', ckpt));
  // Standalone towers as deep as the tiny MLMs' towers (the real ones: 27 SigLIP layers vs the port's 26, CLIP 24 = 24).
  writeSiglipVisionCheckpoint(join(root, 'models', 'siglip-so400m-patch14-384'), { ...TINY_SIGLIP_TOWER, layers: TINY_MODELS.llava_onevision.visionLayers });
  writeClipVisionCheckpoint(join(root, 'models', 'clip-vit-large-patch14-336'), { ...TINY_CLIP_TOWER, layers: TINY_MODELS.llava_next.visionLayers });
});
after(() => { if (root) rmSync(root, { recursive: true, force: true }); });

for (const [model, { family }] of Object.entries(FAMILY).filter(([m]) => !process.env.PAPER_MODEL || m === process.env.PAPER_MODEL)) {
  test(`paper presets end to end on the tiny ${family}: ${model}`, { timeout: 900_000 }, async () => {
    const src = join(repo, 'examples', 'paper', model);
    mkdirSync(join(root, model), { recursive: true });
    for (const file of readdirSync(src).sort()) {
      const c = parse(readFileSync(join(src, file), 'utf8'));
      SMOKE(c);
      const path = join(root, model, file);
      writeFileSync(path, stringify(c));
      const s = await runExperiment(path);
      const run = await loadRunDir(s.runDir);
      const where = `${model}/${file}`;
      if (c.experiment === 'flow') {
        assert.deepEqual([...new Set(run.probes!.map((r) => r.task))].length, 6, `${where}: six probe tasks`);
        assert.ok(run.probes!.some((r) => r.tap === 'projector.out'), `${where}: projector row`);
        if (c.encoderBaseline) {
          const taps = [...new Set(run.probes!.filter((r) => r.tap.startsWith('baseline.')).map((r) => r.tap))];
          assert.equal(taps.length, 1, `${where}: one encoder row (the projector input), got ${taps.join(', ')}`);
          assert.ok(run.probes!.filter((r) => r.tap.startsWith('baseline.')).every((r) => r.layer === null), 'a reference row');
        }
      } else if (c.experiment === 'blocking') {
        assert.deepEqual(run.benchmarks!.conditions.map((x) => x.name).sort(), ['block-input-agnostic', 'block-random', 'none'], where);
        assert.ok(run.keyVariance, `${where}: key variance written`);
      } else if (c.experiment === 'prefix') {
        assert.deepEqual(run.prefix!.conditions.map((x) => x.name), ['none', 'correct', 'random', 'incorrect'], where);
      } else {
        const t = run.underutil!.subtasks[0].table;
        assert.equal(t.valueRightMlmRight + t.valueRightMlmWrong + t.valueWrongMlmRight + t.valueWrongMlmWrong, 2, `${where}: every question counted`);
      }
    }
  });
}
