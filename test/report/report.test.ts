import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildReport } from '../../src/report/build.js';
import { pct } from '../../src/report/html.js';
import { columnRuns, formatTick, peakIndex } from '../../src/report/charts.js';
import { RUN_FILES, writeRun } from '../../src/results/rundir.js';
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

/** The drawn items (SVG elements with an aria-label) of every vega mark group named `name` in a chunk of SVG/HTML. */
function markItems(svg: string, name: string): { label: string; element: string }[] {
  const groups = [...svg.matchAll(new RegExp(`<g class="mark-[a-z]+ role-mark ${name}_marks"[^>]*>([\\s\\S]*?)</g>`, 'g'))];
  return groups.flatMap((g) => [...g[1].matchAll(/<(?:path|text|line)[^>]*aria-label="([^"]*)"[^>]*>(?:([^<]*)<\/text>)?/g)]
    .map((m) => ({ label: m[1], element: m[0], text: m[2] })));
}

/** The text content of each item of a text mark group. */
function markTexts(svg: string, name: string): string[] {
  return markItems(svg, name).map((i) => /<text[^>]*>([^<]*)<\/text>/.exec(i.element)![1]);
}

/** The "key: value" pairs of vega's aria-label (its per-item description of the data it plotted). */
function ariaFields(label: string): Record<string, string> {
  return Object.fromEntries(label.split('; ').map((kv) => [kv.slice(0, kv.lastIndexOf(': ')), kv.slice(kv.lastIndexOf(': ') + 2)]));
}

/** Rect path "M x,y h w v h ..." -> its box. */
function rectBox(element: string): { x: number; y: number; w: number; h: number } {
  const m = /d="M([-\d.e]+),([-\d.e]+)h([-\d.e]+)v([-\d.e]+)h/.exec(element)!;
  return { x: Number(m[1]), y: Number(m[2]), w: Number(m[3]), h: Number(m[4]) };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

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
    for (const id of ['curves', 'encoders', 'key-variance', 'benchmarks', 'prefix', 'underutil', 'samples', 'provenance']) section(html, id);
    // Results first, provenance (with every prompt, collapsed) last; the overview figure opens the curves.
    const order = [...html.matchAll(/<section id="([^"]+)">/g)].map((m) => m[1]);
    assert.deepEqual(order, ['curves', 'encoders', 'key-variance', 'benchmarks', 'prefix', 'underutil', 'paper', 'samples', 'provenance']);
    assert.match(html, /<section id="provenance"><h2>Provenance<\/h2><details><summary>/);
    assert.ok(html.indexOf('data-plot="overview-all-tasks"') < html.indexOf('data-plot="curve-'), 'overview before the per-task charts');
    // Expected plots: overview + 4 (task, metric) curve charts + 1 prefix chart + key variance (count, matrix, one histogram per layer).
    const expected = 1 + 4 + 1 + 2 + LAYERS;
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
    // Histograms carry a threshold rule; every curve chart marks one peak per line (3 lines each).
    assert.equal((html.match(/class="mark-rule role-mark threshold_marks"/g) ?? []).length, LAYERS);
    assert.equal(markItems(section(html, 'curves'), 'peak').length, 4 * 3);
    assert.equal(markItems(section(html, 'curves'), 'peak_label').length, 4 * 3);
    assert.equal((section(html, 'samples').match(/<img [^>]*src="data:image\/png;base64,/g) ?? []).length, 3);
    assert.ok(progress.some((m) => /^writing \d+ plots/.test(m)), 'long steps report progress');
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

test('chart helpers: column runs and peak index', () => {
  assert.deepEqual(columnRuns([0, 1, 2, 5, 7, 8]), [[0, 3], [5, 6], [7, 9]]);
  assert.deepEqual(columnRuns([]), []);
  assert.equal(peakIndex([{ y: 1 }, { y: 3 }, { y: 3 }, { y: 2 }]), 1);
  assert.equal(peakIndex([{ y: 1 }, { y: 3 }, { y: 0.5 }], true), 2);
});

test('every plot is drawn by vega, and what it plots equals the results', async () => {
  await withRun({ layers: LAYERS }, async (run, dir) => {
    const out = join(dir, 'out', 'report.html');
    const summary = await buildReport(run.dir, { out });
    const svgOf = (slug: string) => readFile(join(dir, 'out', 'plots', `${slug}.svg`), 'utf8');
    for (const slug of summary.plots) {
      const svg = await svgOf(slug);
      assert.match(svg, /^<svg [^>]*class="marks"/, `${slug} is a vega scenegraph`);
      assert.match(svg, /role="graphics-object" aria-roledescription="[a-z]+ mark container"/, slug);
      assert.doesNotMatch(svg, /https?:\/\/(?!www\.w3\.org\/(2000\/svg|1999\/xlink)")/, `${slug}: no external references`);
      assert.doesNotMatch(svg, /<image|url\(|@font-face/, slug);
    }

    // Curves: one line per (model, tap family); its peak label is "L<argmax layer>: <seed-mean value>" computed here from the rows.
    const curve = await svgOf('curve-pascal5i-miou');
    const lines = markItems(curve, 'line').filter((i) => i.element.startsWith('<path') && /aria-roledescription="line mark"/.test(i.element));
    assert.equal(lines.length, 3);
    const expectedLabels: string[] = [];
    for (const [model, fam] of [['llava-onevision-7b', 'attn.v'], ['llava-onevision-7b', 'attn.k'], ['qwen2.5-vl-7b', 'attn.v']]) {
      const byLayer = Array.from({ length: LAYERS }, (_, l) => mean(run.probes
        .filter((r) => r.model === model && r.task === 'pascal5i' && r.metric === 'mIoU' && r.tap === `lm.${l}.${fam}`).map((r) => r.value)));
      const peak = byLayer.indexOf(Math.max(...byLayer));
      expectedLabels.push(`L${peak}: ${formatTick(byLayer[peak])}`);
      // vega's description of the peak ring carries the same layer and value.
      const ring = markItems(curve, 'peak').find((i) => ariaFields(i.label).series === `${model} lm.{L}.${fam}`);
      assert.ok(ring, `${model} ${fam} has a peak ring`);
      assert.equal(Number(ariaFields(ring.label).layer), peak);
      assert.ok(Math.abs(Number(ariaFields(ring.label).mIoU) - byLayer[peak]) < 5e-4);
    }
    assert.deepEqual(markTexts(curve, 'peak_label'), expectedLabels);
    // The projector.out seed mean is drawn as a reference rule per model.
    const refs = markItems(curve, 'reference');
    const proj = mean(run.probes.filter((r) => r.model === 'llava-onevision-7b' && r.task === 'pascal5i' && r.metric === 'mIoU' && r.tap === 'projector.out').map((r) => r.value));
    const llavaRef = refs.find((i) => ariaFields(i.label).series === 'llava-onevision-7b projector output (projector.out)');
    assert.ok(llavaRef && Math.abs(Number(ariaFields(llavaRef.label).mIoU) - proj) < 5e-4);

    // Histograms: one bar per non-empty bin, bar heights proportional to the counts, τ rule at the threshold.
    const l0 = run.keyVariance.layers.find((l) => l.layer === LAYERS - 1)!;
    const hist = await svgOf(`keyvar-hist-layer-${l0.layer}`);
    const bars = markItems(hist, 'bins').map((b) => ({ box: rectBox(b.element), fields: ariaFields(b.label) }));
    const nonEmpty = l0.histogram.counts.map((c, i) => ({ c, lo: l0.histogram.edges[i] })).filter((b) => b.c > 0);
    assert.equal(bars.length, nonEmpty.length);
    const pxPerCount = bars[0].box.h / nonEmpty[0].c;
    bars.forEach((b, i) => {
      assert.equal(Number(b.fields.positions), nonEmpty[i].c);
      assert.ok(Math.abs(b.box.h - nonEmpty[i].c * pxPerCount) < 1e-6, 'bar height ∝ count');
    });
    assert.deepEqual(markTexts(hist, 'threshold_label'), [`τ=${formatTick(run.keyVariance.threshold.value)}`]);
    // The rule's x in pixels matches the bins' x scale (two bars give the linear map value -> pixel).
    const [a, b] = [bars[0], bars[bars.length - 1]];
    const px = (v: number) => a.box.x + ((v - Number(a.fields.variance)) / (Number(b.fields.variance) - Number(a.fields.variance))) * (b.box.x - a.box.x);
    const rule = markItems(hist, 'threshold')[0].element;
    assert.ok(Math.abs(Number(/translate\(([-\d.e]+),/.exec(rule)![1]) - px(run.keyVariance.threshold.value)) < 0.01, 'τ rule at the threshold');

    // Matrix: per layer row, the flagged rects cover exactly the input-agnostic positions; blocked layers are shaded.
    const matrix = await svgOf('keyvar-positions');
    const cells = markItems(matrix, 'flagged').map((c) => ariaFields(c.label));
    for (const l of run.keyVariance.layers) {
      const covered = cells.filter((c) => c.layer === `L${l.layer}`).flatMap((c) => {
        const start = Number(c['image-token position (row-major)']);
        return Array.from({ length: Number(c.end) - start }, (_, k) => start + k);
      });
      assert.deepEqual(covered, l.inputAgnostic, `layer ${l.layer}`);
    }
    assert.deepEqual(markItems(matrix, 'blocked').map((c) => ariaFields(c.label).layer), run.keyVariance.blockedLayers.map((l) => `L${l}`));
  });
});

test('image.packed rows stand in for the projector when the run has no projector.out', async () => {
  await withRun({ layers: 4 }, async (run, dir) => {
    const rows = run.probes.map((r) => (r.tap === 'projector.out' ? { ...r, tap: 'image.packed' } : r));
    await writeRun.probes(run.dir, rows);
    const out = join(dir, 'report.html');
    await buildReport(run.dir, { out });
    const html = await readFile(out, 'utf8');
    const enc = tableCells(html, 'encoder-table').filter((r) => r.length);
    const packed = mean(rows.filter((r) => r.model === 'llava-onevision-7b' && r.task === 'pascal5i' && r.metric === 'mIoU' && r.tap === 'image.packed').map((r) => r.value));
    assert.ok(Math.abs(enc[0][0].value - packed) < 1e-12);
    assert.match(section(html, 'encoders'), /data-value="[^"]+" title="image\.packed"/);
    const refs = markItems(section(html, 'curves'), 'reference').map((i) => ariaFields(i.label));
    const ref = refs.find((f) => f.series === 'llava-onevision-7b projector output (image.packed)');
    assert.ok(ref, 'the curve chart has the image.packed reference rule');
  });
});
