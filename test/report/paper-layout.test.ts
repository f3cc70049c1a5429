// The report as a paper shows it: the overview figure (every task normalised to its peak) first, class names from the
// dataset, per-class charts collapsed, references labelled with their token grid, seed bands, fitted axes, prefix
// conditions told apart; and, in Chromium, the overview figure is really drawn (pixels, not only elements).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { decode } from 'fast-png';
import { buildReport } from '../../src/report/build.js';
import { fittedDomain } from '../../src/report/charts.js';
import { metricBreakdown, taskViews } from '../../src/report/analysis.js';
import { writeRun } from '../../src/results/rundir.js';
import { tempRunDir, writeSyntheticRun } from '../results/synthetic-run.js';
import { CHROMIUM, captureReportOverview } from '../../scripts/screenshots.js';

test('axes fit the data: a constant zero curve gets a small window, not -1..1; scores are not padded below zero', () => {
  assert.deepEqual(fittedDomain(0, 0), [0, 0.05]);
  const [lo, hi] = fittedDomain(0.2, 0.6);
  assert.ok(Math.abs(lo - 0.168) < 1e-9 && Math.abs(hi - 0.632) < 1e-9);
  assert.deepEqual(fittedDomain(0.01, 0.5)[0], 0);
  assert.ok(fittedDomain(-2, -1)[0] < -2);
});

test('class and category names: IoU.class17 is Pascal VOC "sheep"; SPair categories; headline metrics are not breakdowns', () => {
  const names = { 'pascal5i-fewshot': ['aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep'] };
  assert.deepEqual(metricBreakdown('pascal5i-fewshot', 'IoU.class17', names), { base: 'IoU per class', category: 'sheep' });
  assert.deepEqual(metricBreakdown('spair-correspondence', 'PCK@0.1.image.cat'), { base: 'PCK@0.1.image per category', category: 'cat' });
  assert.equal(metricBreakdown('pascal5i-fewshot', 'mIoU'), undefined);
  assert.equal(metricBreakdown('spair-correspondence', 'PCK@0.1.point'), undefined);
  const protocol = { 'fewshot-seg': { lm: { flow: { dataset: 'pascal5i', view: 'highres' } }, reference: { flow: { view: "each tap's first view (base)" } } } };
  assert.deepEqual(taskViews(protocol, 'pascal5i-fewshot'), { lm: 'highres', reference: "each tap's first view (base)" });
  assert.deepEqual(taskViews(protocol, 'spair-correspondence'), {});
});

test('the report: overview first, per-class charts named and collapsed, references on their view, seed bands, prefix meanings', async () => {
  const dir = await tempRunDir('kvlens-paper-');
  try {
    const run = await writeSyntheticRun(join(dir, 'run'), { layers: 6 });
    // Per-class rows as the few-shot probe writes them, and the protocol's views (LM on high-res, references on base).
    const perClass = run.probes.filter((r) => r.task === 'pascal5i' && r.metric === 'mIoU').map((r) => ({ ...r, task: 'pascal5i-fewshot', metric: 'IoU.class17' }));
    const main = run.probes.map((r) => (r.task === 'pascal5i' ? { ...r, task: 'pascal5i-fewshot' } : r));
    await writeRun.probes(run.dir, [...main, ...perClass], { 'fewshot-seg': { lm: { flow: { dataset: 'pascal5i', view: 'highres' } }, reference: { flow: { view: "each tap's first view (base)" } } } });
    await writeRun.prefix(run.dir, { conditions: run.prefix.conditions.map((c) => ({ ...c, prefix: c.name === 'none' ? '' : 'per image: a photo of a {class}\n' })) });
    const out = join(dir, 'out', 'report.html');
    await buildReport(run.dir, { out });
    const html = await readFile(out, 'utf8');
    const curves = /<section id="curves">([\s\S]*?)<\/section>/.exec(html)![1];
    assert.ok(curves.indexOf('data-plot="overview-all-tasks"') >= 0 && curves.indexOf('data-plot="overview-all-tasks"') < curves.indexOf('data-plot="curve-'));
    // per-class chart: titled with the class name, inside the collapsed details
    const details = /<details><summary>Per-class and per-category curves \((\d+) charts\)<\/summary>([\s\S]*?)<\/details>/.exec(curves);
    assert.ok(details, 'per-class charts are collapsed');
    assert.match(details[2], /pascal5i-fewshot: IoU sheep/);
    assert.doesNotMatch(curves.slice(0, curves.indexOf('<details>')), /IoU\.class17/);
    // the projector reference says it is on the base view while the curves are on high-res
    assert.match(curves, /projector output \(projector\.out, base view\)/);
    assert.match(curves, /LM taps on the highres view/);
    assert.match(curves, /on the base view, not the curves&#39; highres view|on the base view, not the curves' highres view/);
    assert.match(/<section id="encoders">[\s\S]*?<\/section>/.exec(html)![0], /LM: highres; references: base/);
    // two seeds: a band behind each headline line
    assert.match(curves, /seed_band_marks/);
    assert.match(curves, /Mean over 2 seeds, band ± one standard deviation/);
    // key-variance matrix: position ticks at cell centres (label 0 half a cell in), not at the edges 0..cols
    const matrix = /<figure class="plot" data-plot="keyvar-positions">([\s\S]*?)<\/figure>/.exec(html)![1];
    const xs = [...matrix.matchAll(/<text text-anchor="middle" transform="translate\(([\d.]+),[\d.]+\)"[^>]*>(\d+)<\/text>/g)].map((m) => [Number(m[1]), Number(m[2])]);
    assert.equal(xs[0][1], 0);
    const k = xs[1][1]; // label step in positions
    assert.ok(Math.abs(xs[0][0] - (xs[1][0] - xs[0][0]) / (2 * k)) < 0.01, `first tick at ${xs[0][0]}, labels 0 and ${k} ${xs[1][0] - xs[0][0]} px apart`);
    // prefix table: the same template, told apart by what {class} stands for
    const prefix = /<table id="prefix-table"[\s\S]*?<\/table>/.exec(html)![0];
    assert.match(prefix, /\{class\} = the image&#39;s own class|\{class\} = the image's own class/);
    assert.match(prefix, /\{class\} = a random class/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the overview figure in Chromium: drawn lines in several colours, not a blank box', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} not found — skipped`, timeout: 120_000 }, async () => {
  const dir = await tempRunDir('kvlens-paper-shot-');
  try {
    const run = await writeSyntheticRun(join(dir, 'run'), { layers: 8 });
    const out = join(dir, 'out', 'report.html');
    await buildReport(run.dir, { out });
    const png = join(tmpdir(), `kvlens-report-overview-${process.pid}.png`);
    await captureReportOverview(out, png);
    const img = decode(await readFile(png));
    assert.ok(img.width > 400 && img.height > 250, `${img.width}x${img.height}`);
    const colours = new Map<string, number>();
    for (let i = 0; i < img.width * img.height; i++) {
      const o = i * img.channels;
      const [r, g, b] = [img.data[o], img.data[o + 1], img.data[o + 2]];
      if (Math.max(r, g, b) - Math.min(r, g, b) < 60) continue; // greys: text, axes, grid, background
      const key = `${r >> 5},${g >> 5},${b >> 5}`;
      colours.set(key, (colours.get(key) ?? 0) + 1);
    }
    const strong = [...colours.values()].filter((n) => n > 150);
    assert.ok(strong.length >= 3, `at least three line colours drawn (${[...colours.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).join(' ')})`);
    await rm(png, { force: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
