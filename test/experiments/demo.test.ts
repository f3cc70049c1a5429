import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDemo, DEMO_MODEL_NAME } from '../../src/experiments/demo.js';
import { runProbeFlow } from '../../src/experiments/flow.js';
import { loadRunDir, readMaskFile } from '../../src/results/rundir.js';
import { main } from '../../src/cli/main.js';
import { FeatureStore, modelConfigSha256, kvlensVersion } from '../../src/store/index.js';
import { TINY_LLAVA_ONEVISION } from '../../src/models/synthetic/llava-onevision.js';

test('demo: model -> synthetic data -> stores -> every layer probed -> run directory -> report', async () => {
  const out = mkdtempSync(join(tmpdir(), 'kvlens-demo-'));
  try {
    const seed = 11;
    const s = await runDemo({ out, seed, segImages: 16, pairs: 4, threads: 2 });
    const run = join(out, 'run');
    assert.equal(s.runDir, run);
    for (const f of ['manifest.json', 'results/probes.json', 'results/probes.csv', 'report/report.html']) assert.ok(existsSync(join(run, f)), `${f} missing`);
    const linked = FeatureStore.open(join(run, 'store')); // the viewer's link to the store
    assert.equal(linked.images().length, 16);
    linked.close();
    const plots = readdirSync(join(run, 'report', 'plots'));
    assert.ok(plots.some((p) => p.endsWith('.svg')) && plots.some((p) => p.endsWith('.png')), `plots: ${plots.join(', ')}`);

    // The run directory reads back through the results contract.
    const loaded = await loadRunDir(run);
    assert.deepEqual(loaded.manifest.seeds, [seed]);
    assert.equal(loaded.manifest.kvlensVersion, kvlensVersion());
    assert.equal(loaded.manifest.models[0].configHash, modelConfigSha256(join(out, 'model')));
    assert.equal(loaded.manifest.models[0].lmLayers, TINY_LLAVA_ONEVISION.text.layers);
    for (const step of ['model', 'data', 'extract', 'probe', 'report']) assert.ok(loaded.manifest.timings[step] >= 0, `timing ${step}`);
    const rows = loaded.probes!;
    assert.equal(rows.length, s.rows.length);

    // One row per (task, tap, layer, metric), every layer's values and keys plus the packed projector output.
    const L = TINY_LLAVA_ONEVISION.text.layers;
    const expectedTaps = [...Array.from({ length: L }, (_, l) => `lm.${l}.attn.v`), ...Array.from({ length: L }, (_, l) => `lm.${l}.attn.k`), 'image.packed'].sort();
    const keys = new Set(rows.map((r) => `${r.task}|${r.tap}|${r.layer}|${r.metric}`));
    assert.equal(keys.size, rows.length, 'duplicate rows');
    const byTaskMetric = new Map<string, string[]>();
    for (const r of rows) (byTaskMetric.get(`${r.task}|${r.metric}`) ?? byTaskMetric.set(`${r.task}|${r.metric}`, []).get(`${r.task}|${r.metric}`)!).push(r.tap);
    assert.deepEqual([...byTaskMetric.keys()].sort(), [
      'pascal5i-fewshot|FB-IoU', 'pascal5i-fewshot|mIoU',
      'spair-correspondence|PCK@0.1.image', 'spair-correspondence|PCK@0.1.point', 'spair-correspondence|PCK@0.2.image', 'spair-correspondence|PCK@0.2.point',
    ]);
    for (const [k, taps] of byTaskMetric) assert.deepEqual([...taps].sort(), expectedTaps, k);
    for (const r of rows) {
      assert.ok(r.value >= 0 && r.value <= 1, `${r.tap} ${r.metric} = ${r.value}`);
      assert.equal(r.model, DEMO_MODEL_NAME);
      assert.equal(r.seed, seed);
      assert.equal(r.layer, r.tap === 'image.packed' ? null : Number(r.tap.split('.')[1]));
      assert.ok(r.n > 0);
    }

    // The report holds the layer curves of both tasks as inline SVG.
    const html = readFileSync(join(run, 'report', 'report.html'), 'utf8');
    assert.ok((html.match(/<svg/g) ?? []).length >= 2, 'no inline plots');
    assert.match(html, /pascal5i-fewshot: mIoU by layer/);
    assert.match(html, /spair-correspondence: PCK@0.1.point by layer/);

    // The same stores probed again with the same seed on one thread give the same numbers as the written table.
    const again = await runProbeFlow({ task: 'fewshot-seg', store: join(out, 'stores', 'pascal5i'), data: join(out, 'data', 'pascal5i'), taps: ['lm.*.attn.v'], layers: '0,7', view: 'highres', fold: 'pooled', shots: 1, episodes: 'per-entry', seed, model: DEMO_MODEL_NAME, threads: 1 });
    for (const r of again.rows.filter((x) => x.metric === 'mIoU')) {
      assert.equal(r.value, rows.find((x) => x.tap === r.tap && x.metric === 'mIoU')!.value);
    }

    // Pictures (issue 16): the flow-only demo writes probe masks + ground truth for 4 images, with a sample PNG each.
    assert.equal(readdirSync(join(run, 'masks')).length, 4);
    assert.deepEqual(loaded.samples.map((x) => x.kind), ['mask', 'mask', 'mask', 'mask']);
    assert.equal((html.match(/<figure data-sample="mask-fewshot-seg-\d\.png"><img alt="[^"]+" src="data:image\/png;base64,/g) ?? []).length, 4);
    // `kvlens probe --pictures N` on the same store: N mask files (every probed layer) + N sample PNGs in --out; 0: none.
    const probeOut = join(out, 'probe');
    const args = ['probe', 'fewshot-seg', '--store', join(out, 'stores', 'pascal5i'), '--data', join(out, 'data', 'pascal5i'), '--view', 'highres', '--fold', 'pooled', '--shots', '1', '--episodes', 'per-entry', '--seed', String(seed), '--threads', '1', '--layers', '0,7'];
    assert.equal(await main([...args, '--out', probeOut, '--pictures', '2']), 0);
    const masks = readdirSync(join(probeOut, 'masks'));
    assert.equal(masks.length, 2);
    for (const f of masks) {
      const m = (await readMaskFile(probeOut, decodeURIComponent(f.replace(/\.json$/, ''))))!;
      assert.deepEqual(Object.keys(m.layers).sort(), ['0', '7']);
      // the same episode, the same layer: the demo's own mask file holds the same prediction
      const demoMask = await readMaskFile(run, m.imageId);
      if (demoMask) assert.deepEqual(demoMask.layers['7'], m.layers['7']);
    }
    assert.equal(JSON.parse(readFileSync(join(probeOut, 'samples', 'index.json'), 'utf8')).samples.length, 2);
    assert.equal(await main([...args, '--out', join(out, 'probe0'), '--pictures', '0']), 0);
    assert.ok(!existsSync(join(out, 'probe0', 'masks')));
    // A layer selection in the tap pattern (not only "*") names the LM family the pictures show.
    assert.equal(await main([...args, '--taps', 'lm.6-7.attn.v', '--out', join(out, 'probe-sel'), '--pictures', '1']), 0);
    const sel = readdirSync(join(out, 'probe-sel', 'masks'));
    assert.equal(sel.length, 1);
    assert.deepEqual(Object.keys((await readMaskFile(join(out, 'probe-sel'), decodeURIComponent(sel[0].replace(/\.json$/, ''))))!.layers).sort(), ['6', '7']);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
