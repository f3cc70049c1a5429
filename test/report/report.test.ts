import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildReport } from '../../src/report/build.js';
import { pct } from '../../src/report/html.js';
import { niceTicks, peakIndex } from '../../src/report/charts.js';
import { RUN_FILES } from '../../src/results/rundir.js';
import { KvlensInputError } from '../../src/util/errors.js';
import { tempRunDir, writeSyntheticRun, type SyntheticRun } from '../results/synthetic-run.js';

const LAYERS = 8;

/** All data-value numbers of a table (by id), row by row, as [text, value] pairs. */
function tableCells(html: string, id: string): { text: string; value: number }[][] {
  const m = new RegExp(`<table id="${id}"[^>]*>([\\s\\S]*?)</table>`).exec(html);
  assert.ok(m, `table ${id} is in the report`);
  return [...m[1].matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((tr) => [...tr[1].matchAll(/<td class="num[^"]*" data-value="([^"]+)"[^>]*>([^<]*)<\/td>/g)]
    .map((c) => ({ value: Number(c[1]), text: c[2] })));
}

function section(html: string, id: string): string {
  const m = new RegExp(`<section id="${id}">([\\s\\S]*?)</section>`).exec(html);
  assert.ok(m, `section ${id} is present`);
  return m[1];
}

async function withRun(opts: Parameters<typeof writeSyntheticRun>[1], body: (run: SyntheticRun, dir: string) => Promise<void>) {
  const dir = await tempRunDir('kvlens-report-');
  try {
    await body(await writeSyntheticRun(join(dir, 'run'), opts), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the report holds every plot and section, inline and as SVG + PNG files', async () => {
  await withRun({ layers: LAYERS }, async (run, dir) => {
    const progress: string[] = [];
    const out = join(dir, 'out', 'report.html');
    const summary = await buildReport(run.dir, { out, onProgress: (m) => progress.push(m) });
    const html = await readFile(out, 'utf8');
    assert.deepEqual(summary.omitted, []);
    for (const id of ['run', 'curves', 'encoders', 'key-variance', 'benchmarks', 'prefix', 'underutil', 'samples']) section(html, id);
    // Expected plots: 4 (task, metric) curve charts + 1 prefix chart + key variance (count, matrix, one histogram per layer).
    const expected = 4 + 1 + 2 + LAYERS;
    assert.equal(summary.plots.length, expected);
    assert.equal((html.match(/<figure class="plot"/g) ?? []).length, expected);
    assert.equal((html.match(/<svg /g) ?? []).length, expected);
    const files = await readdir(join(dir, 'out', 'plots'));
    for (const slug of summary.plots) {
      assert.ok(files.includes(`${slug}.svg`) && files.includes(`${slug}.png`), slug);
      const png = await readFile(join(dir, 'out', 'plots', `${slug}.png`));
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
      assert.ok(png.readUInt32BE(16) >= 600, 'PNG is rendered at 2x'); // IHDR width
      const svg = await readFile(join(dir, 'out', 'plots', `${slug}.svg`), 'utf8');
      assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    }
    // Histograms carry a threshold line; every curve chart marks one peak per line (3 lines each).
    assert.equal((html.match(/class="threshold"/g) ?? []).length, LAYERS);
    assert.equal((section(html, 'curves').match(/class="peak"/g) ?? []).length, 4 * 3);
    assert.equal((section(html, 'samples').match(/<img [^>]*src="data:image\/png;base64,/g) ?? []).length, 3);
    assert.ok(progress.some((m) => m.startsWith('writing plots')), 'long steps report progress');
  });
});

test('the report is self-contained: no network references, no scripts', async () => {
  await withRun({ layers: LAYERS }, async (run, dir) => {
    const out = join(dir, 'report.html');
    await buildReport(run.dir, { out });
    const html = await readFile(out, 'utf8');
    assert.doesNotMatch(html, /https?:\/\//);
    assert.doesNotMatch(html, /<script|<link|@import|url\(/i);
    for (const m of html.matchAll(/\s(?:src|href)="([^"]*)"/g)) assert.match(m[1], /^(data:|#)/, `resource ${m[1].slice(0, 40)}`);
  });
});

test('table numbers equal the results files', async () => {
  await withRun({ layers: LAYERS }, async (run, dir) => {
    const out = join(dir, 'report.html');
    await buildReport(run.dir, { out });
    const html = await readFile(out, 'utf8');

    // POPE: one row per (condition, split) in file order none / block-input-agnostic / block-random.
    const pope = tableCells(html, 'pope-table').filter((r) => r.length);
    const expected = run.benchmarks.conditions.flatMap((c) => c.pope!.splits);
    assert.equal(pope.length, expected.length);
    pope.forEach((cells, i) => {
      const s = expected[i];
      assert.deepEqual(cells.slice(0, 6).map((c) => c.value), [s.accuracy, s.precision, s.recall, s.f1, s.yesRatio, s.unparsedRate]);
      assert.equal(cells[3].text, pct(s.f1));
    });
    const noneF1 = expected[0].f1;
    assert.ok(Math.abs(pope[3][6].value - (expected[3].f1 - noneF1)) < 1e-12, 'ΔF1 vs none for block-input-agnostic/random');

    // MME: 14 subtasks x 3 conditions (acc, acc+, score), then perception/cognition totals.
    const mme = tableCells(html, 'mme-table').filter((r) => r.length);
    run.benchmarks.conditions[0].mme!.subtasks.forEach((s, i) => {
      run.benchmarks.conditions.forEach((c, k) => {
        const sub = c.mme!.subtasks[i];
        assert.deepEqual(mme[i].slice(3 * k, 3 * k + 3).map((x) => x.value), [sub.acc, sub.accPlus, sub.score], `${s.name} ${c.name}`);
      });
    });
    assert.deepEqual(mme[14].map((x) => x.value), run.benchmarks.conditions.map((c) => c.mme!.perception));
    assert.deepEqual(mme[15].map((x) => x.value), run.benchmarks.conditions.map((c) => c.mme!.cognition));

    // BLINK: per subtask the three accuracies; macro and micro rows.
    const blink = tableCells(html, 'blink-table').filter((r) => r.length);
    run.benchmarks.conditions[0].blink!.subtasks.forEach((s, i) => {
      assert.deepEqual(blink[i].slice(0, 3).map((x) => x.value), run.benchmarks.conditions.map((c) => c.blink!.subtasks[i].accuracy), s.name);
    });
    assert.deepEqual(blink[14].slice(0, 3).map((x) => x.value), run.benchmarks.conditions.map((c) => c.blink!.macro));
    assert.deepEqual(blink[15].slice(0, 3).map((x) => x.value), run.benchmarks.conditions.map((c) => c.blink!.micro));

    // Under-utilisation: Art_Style 39 of 117 questions are Value right / MLM wrong = 33.3 %.
    const art = tableCells(html, 'underutil-Art_Style').filter((r) => r.length);
    assert.deepEqual(art.map((r) => r.map((c) => c.value)), [[52, 39], [15, 11]]);
    assert.match(section(html, 'underutil'), /<b class="rate" data-value="0\.333333\d*">33\.3%<\/b> of Art_Style/);

    // Encoder comparison: projector / SigLIP are seed means; best LM layer is the max over layers of seed means.
    const enc = tableCells(html, 'encoder-table').filter((r) => r.length);
    const rows = run.probes.filter((r) => r.model === 'llava-onevision-7b' && r.task === 'pascal5i' && r.metric === 'mIoU');
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const proj = mean(rows.filter((r) => r.tap === 'projector.out').map((r) => r.value));
    const sig = mean(rows.filter((r) => r.tap === 'siglip.post_norm').map((r) => r.value));
    let best = -Infinity;
    for (const fam of ['attn.v', 'attn.k']) {
      for (let l = 0; l < LAYERS; l++) best = Math.max(best, mean(rows.filter((r) => r.tap === `lm.${l}.${fam}`).map((r) => r.value)));
    }
    assert.ok(Math.abs(enc[0][0].value - proj) < 1e-12 && Math.abs(enc[0][1].value - sig) < 1e-12 && Math.abs(enc[0][2].value - best) < 1e-12);

    // Key variance: per-layer count of input-agnostic positions.
    const kv = tableCells(html, 'keyvar-table').filter((r) => r.length);
    assert.deepEqual(kv.map((r) => r[3].value), run.keyVariance.layers.map((l) => l.inputAgnostic.length));
    assert.deepEqual(kv.map((r) => r[0].value), run.keyVariance.layers.map((l) => Math.min(...l.variance)));
  });
});

test('peak table: the peak layer is the argmax of the seed-mean curve', async () => {
  await withRun({ layers: LAYERS }, async (run, dir) => {
    const out = join(dir, 'report.html');
    await buildReport(run.dir, { out });
    const html = await readFile(out, 'utf8');
    const body = /<table id="peaks">[\s\S]*?<\/table>/.exec(html)![0];
    const first = /<tr><td>pascal5i<\/td><td>mIoU<\/td><td>llava-onevision-7b<\/td><td>lm\.\{L\}\.attn\.v<\/td><td>(\d+)<\/td>/.exec(body);
    const curve = Array.from({ length: LAYERS }, (_, l) => {
      const vs = run.probes.filter((r) => r.task === 'pascal5i' && r.metric === 'mIoU' && r.model === 'llava-onevision-7b' && r.tap === `lm.${l}.attn.v`).map((r) => r.value);
      return vs.reduce((a, b) => a + b, 0) / vs.length;
    });
    assert.equal(Number(first![1]), curve.indexOf(Math.max(...curve)));
  });
});

test('missing result files become notes, not crashes; malformed files name themselves', async () => {
  await withRun({ layers: 4, omit: [RUN_FILES.benchmarks, RUN_FILES.prefix, RUN_FILES.samplesDir, RUN_FILES.probesJson] }, async (run, dir) => {
    const out = join(dir, 'report.html');
    const summary = await buildReport(run.dir, { out });
    assert.deepEqual(summary.omitted.sort(), ['benchmarks', 'curves', 'encoders', 'prefix', 'samples']);
    const html = await readFile(out, 'utf8');
    assert.match(section(html, 'benchmarks'), /results\/benchmarks\.json is not in this run/);
    assert.match(section(html, 'samples'), /samples\/ is not in this run/);
    assert.doesNotMatch(html, /pope-table/);
    assert.equal(summary.plots.length, 2 + 4); // key-variance plots only
    await writeFile(join(run.dir, RUN_FILES.underutil), '{"model": "m"}');
    await assert.rejects(buildReport(run.dir, { out: join(dir, 'r2.html') }), (e: unknown) => e instanceof KvlensInputError && e.message.includes('underutil.json'));
    await assert.rejects(readFile(join(dir, 'r2.html')), /ENOENT/);
  });
});

test('chart helpers: nice ticks and peak index', () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.37, 0.63, 5), [0.4, 0.5, 0.6]); // raw step 0.052 rounds up to 0.1
  assert.deepEqual(niceTicks(0.35, 0.6, 5), [0.35, 0.4, 0.45, 0.5, 0.55, 0.6]);
  assert.deepEqual(niceTicks(0, 27, 10), [0, 5, 10, 15, 20, 25]); // raw step 2.7 rounds up to 5
  assert.equal(peakIndex([{ y: 1 }, { y: 3 }, { y: 3 }, { y: 2 }]), 1);
  assert.equal(peakIndex([{ y: 1 }, { y: 3 }, { y: 0.5 }], true), 2);
});
