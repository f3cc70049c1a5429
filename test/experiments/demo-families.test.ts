// `kvlens demo --family`: the same experiment on the tiny LLaVA-NeXT and Qwen2.5-VL models (small sizes): every layer's
// values and keys plus the packed features probed for both tasks, the manifest names the family's model, and the
// stores hold the family's views (Qwen2.5-VL: "highres" only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDemo, DEMO_FAMILIES, type DemoFamily } from '../../src/experiments/demo.js';
import { loadRunDir } from '../../src/results/rundir.js';
import { FeatureStore, modelConfigSha256 } from '../../src/store/index.js';
import { readModelType } from '../../src/models/index.js';
import { main } from '../../src/cli/main.js';

for (const [family, views] of [['llava_next', ['base', 'highres']], ['qwen2_5_vl', ['highres']]] as const) {
  test(`demo --family ${family}: every layer probed on the family's tiny model`, { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), `kvlens-demo-${family}-`));
    try {
      const s = await runDemo({ out, seed: 3, segImages: 8, pairs: 3, threads: 2, family: family as DemoFamily });
      assert.equal(readModelType(join(out, 'model')), family);
      assert.ok(existsSync(join(s.runDir, 'report', 'report.html')));
      const st = FeatureStore.open(join(out, 'stores', 'pascal5i'));
      assert.deepEqual([...st.views], views);
      assert.equal(st.images().length, 8);
      st.close();
      const run = await loadRunDir(s.runDir);
      const spec = DEMO_FAMILIES[family];
      assert.equal(run.manifest.models[0].id, spec.name);
      assert.equal(run.manifest.models[0].configHash, modelConfigSha256(join(out, 'model')));
      const L = spec.lmLayers;
      const taps = new Set(s.rows.map((r) => r.tap));
      const expected = [...Array.from({ length: L }, (_, l) => `lm.${l}.attn.v`), ...Array.from({ length: L }, (_, l) => `lm.${l}.attn.k`), 'image.packed'];
      assert.deepEqual([...taps].sort(), expected.sort());
      assert.deepEqual([...new Set(s.rows.map((r) => r.task))].sort(), ['pascal5i-fewshot', 'spair-correspondence']);
      assert.ok(s.rows.every((r) => Number.isFinite(r.value)), 'finite metrics');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
}

// The CLI: `kvlens demo --family F` runs the whole suite (all five experiments, one run directory, one report).
for (const family of ['llava_next', 'qwen2_5_vl'] as const) {
  test(`kvlens demo --family ${family}: all five experiments, one run directory, one report`, { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), `kvlens-demo-cli-${family}-`));
    try {
      const code = await main(['demo', '--family', family, '--out', out, '--images', '8', '--pairs', '3', '--threads', '1', '--quiet']);
      assert.equal(code, 0);
      const run = await loadRunDir(join(out, 'run'));
      assert.equal(readModelType(join(out, 'model')), family);
      assert.match(run.manifest.experiment, /flow \+ keys \+ blocking \+ prefix \+ underutil/);
      for (const f of ['probes.json', 'key_variance.json', 'benchmarks.json', 'prefix.json', 'underutil.json']) assert.ok(existsSync(join(out, 'run', 'results', f)), f);
      assert.ok(existsSync(join(out, 'run', 'report', 'report.html')));
      const format = family === 'qwen2_5_vl' ? 'qwen2_5_vl' : 'llava/llava_llama_3';
      assert.match(run.manifest.notes ?? '', new RegExp(`Format ${format.replace('/', '\\/')};`), 'the family\'s lmms-eval prompt');
      // Pictures (issue 16): masks + attention for the pictured images, attention for sampled questions, all in the report.
      const dir = (d: string) => readdirSync(join(out, 'run', d)).map((f) => decodeURIComponent(f.replace(/\.json$/, '')));
      const masks = dir('masks');
      assert.ok(masks.length >= 1 && masks.length <= 4, `masks for ${masks.length} image(s)`); // 8 images: fewer usable queries
      const attention = dir('attention');
      for (const id of masks) assert.ok(attention.includes(id), `attention for ${id}`);
      assert.ok(attention.some((a) => a.startsWith('pope/')) && attention.some((a) => a.startsWith('underutil/')), attention.join(', '));
      const html = readFileSync(join(out, 'run', 'report', 'report.html'), 'utf8');
      for (const x of run.samples) assert.ok(html.includes(`<figure data-sample="${x.file}"><img alt=`), x.file);
      assert.ok(run.samples.some((x) => x.kind === 'mask') && run.samples.some((x) => x.file.startsWith('attention-')) && run.samples.some((x) => x.file.startsWith('keys-variance')));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
}
