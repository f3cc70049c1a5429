// Report sections built from probe rows: run header, layer-wise curves, encoder comparison, prefix comparison.
import type { Manifest, PrefixResults } from '../results/schema.js';
import type { ProbeRow } from '../results/schema.js';
import { VOC_CLASSES } from '../data/loaders/pascal5i.js';
import {
  curvePeak, encoderComparison, layerCurves, lowerIsBetter, metricBreakdown, projectorReference, tapFamily, taskViews, viewName,
  type CurveGroup, type TaskViews,
} from './analysis.js';
import { inlineSvg, lineChart, PALETTE } from './charts.js';
import { esc, figure, fixed, numCell, section, table, td, deltaCell } from './html.js';
import { tapAtLayer } from '../taps/names.js';
import { isLanguageModelTap } from '../taps/table.js';

export interface Plot { slug: string; title: string; svg: string }
/** Records a plot; returns its final slug (made unique across the report). */
export type PlotSink = (p: Plot) => string;

export function slugify(s: string): string {
  return s.toLowerCase().replace(/\{l\}/g, 'L').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** Probe metrics are shown with 3 decimals; their unit is whatever the probe wrote (fraction for mIoU/PCK). */
const metricFmt = (v: number) => fixed(v, 3);

/** One line under the title: what ran, on which model, when (the full provenance is the last section). */
export function runLine(m: Manifest): string {
  const models = m.models.map((x) => x.id).join(', ');
  return `<p class="runline">${esc(m.experiment)} · ${esc(models)} · ${esc(m.createdAt)} · seeds ${esc(m.seeds.join(', '))} · ${esc(m.dtype)} on ${esc(m.device)}</p>`;
}

/** Provenance, collapsed, at the end: run fields, models, datasets, timings and every prompt in one table. */
export function provenanceSection(m: Manifest, runDir: string): string {
  const models = table('models', ['model', 'revision', 'config hash', 'LM layers', 'vision layers'],
    m.models.map((x) => [td(x.id), td(x.revision ?? '–'), td(x.configHash), td(x.lmLayers), td(x.visionLayers ?? '–')]));
  const datasets = m.datasets.length
    ? table('datasets', ['dataset', 'split', 'hash', 'items'], m.datasets.map((d) => [td(d.name), td(d.split ?? '–'), td(d.hash), td(d.count ?? '–')]))
    : '';
  const timings = Object.entries(m.timings);
  const meta = table('run-meta', ['field', 'value'], [
    [td('experiment'), td(m.experiment)], [td('run directory'), td(runDir)], [td('kvlens version'), td(m.kvlensVersion)], [td('created'), td(m.createdAt)],
    [td('dtype'), td(m.dtype)], [td('device'), td(m.device)], [td('seeds'), td(m.seeds.join(', '))],
    ...timings.map(([k, v]) => [td(`time: ${k}`), `<td class="num" data-value="${v}">${v.toFixed(1)} s</td>`]),
  ]);
  const promptRows = Object.entries(m.prompts).map(([k, v]) => [td(k), `<td><pre>${esc(v)}</pre></td>`]);
  const prompts = promptRows.length ? table('prompts', ['prompt', 'as rendered'], promptRows) : '';
  const summary = `${esc(m.experiment)}: kvlens ${esc(m.kvlensVersion)}, ${m.models.length} model(s), ${m.datasets.length} dataset(s), ${promptRows.length} prompt(s)`;
  return section('provenance', 'Provenance',
    `<details><summary>${summary}</summary><div class="meta">${meta}${models}${datasets}</div>${prompts}</details>${m.notes ? `<p>${esc(m.notes)}</p>` : ''}`);
}

type RefLine = { label: string; y: number; color?: string };
const REF_COLORS = ['#555555', '#999999'];

function curveChart(g: CurveGroup, title: string, labelOf: (c: CurveGroup['curves'][number]) => string, refLines: RefLine[] = [], subtitle?: string): Promise<string> {
  return lineChart({
    title, subtitle, xLabel: 'layer', yLabel: g.metric, markPeaks: true, lowerIsBetter: lowerIsBetter(g.metric), refLines,
    series: g.curves.map((c, i) => ({
      label: labelOf(c), points: c.points.map((p) => ({ x: p.layer, y: p.mean })), color: PALETTE[i % PALETTE.length],
      // seed spread (mean ± std) as a band when more than one seed was run
      ...(c.points.some((p) => p.seeds > 1) ? { band: c.points.map((p) => ({ x: p.layer, lo: p.mean - p.std, hi: p.mean + p.std })) } : {}),
    })),
  });
}

/** One dotted line per model of the group at its projector reference (projector.out, else image.packed; seed mean). */
function projectorLines(rows: ProbeRow[], g: CurveGroup, multiModel: boolean, refView?: string): RefLine[] {
  const models = [...new Set(g.curves.map((c) => c.model))];
  return models.flatMap((model, i) => {
    const ref = projectorReference(rows.filter((r) => r.model === model && r.task === g.task && r.metric === g.metric));
    const view = refView ? `, ${refView} view` : '';
    return ref ? [{ label: `${multiModel ? `${model} ` : ''}projector output (${ref.tap}${view})`, y: ref.value, color: REF_COLORS[i % REF_COLORS.length] }] : [];
  });
}

/** Task names in titles: the benchmark's own class/category names (Pascal-5i's VOC classes). */
const CLASS_NAMES: Record<string, readonly string[]> = { 'pascal5i-fewshot': VOC_CLASSES };

/**
 * The paper's Figure 2 layout: every task's headline curve against layer in one chart, each normalised to its own peak
 * (1 = the best layer of that line), so where information builds and fades can be compared across tasks.
 */
async function overviewFigure(groups: CurveGroup[], plot: PlotSink, views: (task: string) => TaskViews): Promise<string | undefined> {
  const firstPerTask = new Map<string, CurveGroup>();
  for (const g of groups) if (!firstPerTask.has(g.task)) firstPerTask.set(g.task, g);
  const constant: string[] = [];
  const series = [...firstPerTask.values()].flatMap((g, ti) => g.curves.filter((c) => isLanguageModelTap(c.tap) && c.points.length > 1).map((c) => {
    if (c.points.every((p) => p.mean === c.points[0].mean)) constant.push(`${g.task} ${c.tap} (${metricFmt(c.points[0].mean)})`);
    const peak = curvePeak(c, g.metric).mean;
    const lower = lowerIsBetter(g.metric);
    const norm = (v: number) => (peak === 0 ? 0 : lower ? peak / v : v / peak);
    return { label: `${g.task} ${g.metric} — ${c.tap}`, points: c.points.map((p) => ({ x: p.layer, y: norm(p.mean) })), color: PALETTE[ti % PALETTE.length], dashed: /attn\.k$/.test(c.tap) };
  }));
  if (series.length < 1) return undefined;
  const svg = await lineChart({
    title: 'All tasks by layer, each curve normalised to its peak', subtitle: 'solid: values; dashed: keys',
    xLabel: 'layer', yLabel: 'score / peak score', series, yDomain: [Math.min(0, ...series.flatMap((s) => s.points.map((p) => p.y))), 1.05], width: 560, height: 280,
  });
  const slug = plot({ slug: 'overview-all-tasks', title: 'All tasks by layer (normalised to peak)', svg });
  const lmViews = [...new Set([...firstPerTask.keys()].map((t) => viewName(views(t).lm)).filter(Boolean))];
  const flat = constant.length ? ` Constant across layers (drawn at 1): ${constant.join('; ')}.` : '';
  return figure(slug, inlineSvg(svg), `One line per task (its first metric) and LM tap; 1 = the line's best layer.${lmViews.length ? ` Token grid: ${lmViews.join(', ')} view.` : ''}${flat}`);
}

export async function curvesSection(rows: ProbeRow[], plot: PlotSink, protocol?: Record<string, unknown>): Promise<string> {
  const all = layerCurves(rows);
  if (all.length === 0) return section('curves', 'Layer-wise probe curves', '<p class="note">results/probes has no per-layer rows.</p>');
  const views = (task: string) => taskViews(protocol, task);
  const headline = all.filter((g) => !metricBreakdown(g.task, g.metric));
  const breakdown = all.filter((g) => metricBreakdown(g.task, g.metric));
  const multiModel = new Set(rows.map((r) => r.model)).size > 1;
  const overview = await overviewFigure(headline.length ? headline : all, plot, views);
  const figs: string[] = [];
  const peakRows: string[][] = [];
  for (const g of headline) {
    const v = views(g.task);
    const lmView = viewName(v.lm);
    const refView = viewName(v.reference);
    const title = `${g.task}: ${g.metric} by layer`;
    const refs = projectorLines(rows, g, multiModel, refView);
    const svg = await curveChart(g, title, (c) => (multiModel ? `${c.model} ${c.tap}` : c.tap), refs, lmView ? `LM taps on the ${lmView} view` : undefined);
    const slug = plot({ slug: `curve-${slugify(g.task)}-${slugify(g.metric)}`, title, svg });
    const seeds = Math.max(...g.curves.flatMap((c) => c.points.map((p) => p.seeds)));
    const refNote = refs.length ? ` Dotted: the projector output (no layer)${refView ? ` on the ${refView} view${lmView && lmView !== refView ? `, not the curves' ${lmView} view` : ''}` : ''}.` : '';
    figs.push(figure(slug, inlineSvg(svg), `${seeds > 1 ? `Mean over ${seeds} seeds, band ± one standard deviation` : 'One seed'}; rings mark each line's peak layer.${refNote}`));
    for (const c of g.curves) {
      const p = curvePeak(c, g.metric);
      peakRows.push([td(g.task), td(g.metric), td(c.model), td(c.tap), td(p.layer), numCell(p.mean, metricFmt), numCell(p.std, metricFmt), td(p.seeds), td(Math.round(p.n))]);
    }
  }
  const peaks = table('peaks', ['task', 'metric', 'model', 'tap', 'peak layer', 'value', 'std over seeds', 'seeds', 'n'], peakRows, 'Peak layer per line');
  const detail: string[] = [];
  for (const g of breakdown) {
    const b = metricBreakdown(g.task, g.metric, CLASS_NAMES)!;
    const title = `${g.task}: ${b.base.replace(/ per (class|category)$/, '')} ${b.category}`;
    const svg = await curveChart(g, title, (c) => (multiModel ? `${c.model} ${c.tap}` : c.tap), [], b.base);
    const slug = plot({ slug: `curve-${slugify(g.task)}-${slugify(g.metric)}`, title, svg });
    const flat = g.curves.every((c) => c.points.every((p) => p.mean === c.points[0].mean));
    detail.push(figure(slug, inlineSvg(svg), flat ? `Constant at ${metricFmt(g.curves[0].points[0].mean)} across layers.` : 'Rings mark each line\'s peak layer.'));
  }
  const details = detail.length
    ? `<details><summary>Per-class and per-category curves (${detail.length} charts)</summary><div class="grid">${detail.join('')}</div></details>` : '';
  return section('curves', 'Layer-wise probe curves', `${overview ? `<div class="grid">${overview}</div>` : ''}<h3>Per task</h3><div class="grid">${figs.join('')}</div>${peaks}${details}`);
}

export function encoderSection(rows: ProbeRow[], protocol?: Record<string, unknown>): string {
  const cmp = encoderComparison(rows.filter((r) => !metricBreakdown(r.task, r.metric)));
  if (cmp.length === 0) {
    return section('encoders', 'Encoder comparison', '<p class="note">No projector.out, image.packed or siglip.* probe rows in this run; the comparison needs at least one of them.</p>');
  }
  const body = cmp.map((e) => {
    const vals = [e.projector?.value, e.siglip?.value, e.bestLm?.value].filter((v): v is number => v !== undefined);
    const best = lowerIsBetter(e.metric) ? Math.min(...vals) : Math.max(...vals);
    return [td(e.model), td(e.task), td(e.metric), numCell(e.projector?.value, metricFmt, { best: e.projector?.value === best, title: e.projector?.tap }),
      numCell(e.siglip?.value, metricFmt, { best: e.siglip?.value === best, title: e.siglip?.tap }),
      numCell(e.bestLm?.value, metricFmt, { best: e.bestLm?.value === best }), td(e.bestLm ? tapAtLayer(e.bestLm.tap, e.bestLm.layer) : '–'),
      td(viewsText(taskViews(protocol, e.task)))];
  });
  const mixed = cmp.some((e) => { const v = taskViews(protocol, e.task); return v.lm && v.reference && viewName(v.lm) !== viewName(v.reference); });
  return section('encoders', 'Encoder comparison',
    table('encoder-table', ['model', 'task', 'metric', 'projector output', 'SigLIP (no MLM finetuning)', 'best LM layer', 'best LM tap', 'token grids'], body)
    + (mixed ? '<p class="note">The references and the LM layers were probed on different token grids (see "token grids"): compare them with that in mind.</p>' : '')
    + '<p>Bold: the best of the three representations. Projector output: <code>projector.out</code>, or <code>image.packed</code> (the same output as the '
    + 'packed image tokens the LM receives) when the run has no projector.out rows; hover a value for its tap. LM values are seed means at the best '
    + 'layer over all lm.* taps.</p>');
}

function viewsText(v: TaskViews): string {
  const lm = viewName(v.lm);
  const ref = viewName(v.reference);
  if (!lm && !ref) return 'not recorded';
  return lm === ref || !ref ? `${lm} view` : `LM: ${lm ?? '?'}; references: ${ref}`;
}

/** What a prefix condition's {class} stands for (the same template text for every condition otherwise). */
const PREFIX_CONDITIONS: Record<string, string> = {
  none: 'no prefix', correct: "{class} = the image's own class", random: '{class} = a random class', incorrect: "{class} = a class not in the image",
};

export async function prefixSection(p: PrefixResults, plot: PlotSink): Promise<string> {
  // Curves per (task, metric, model, tap family) with one line per prefix condition.
  type Key = string;
  const byKey = new Map<Key, { task: string; metric: string; model: string; tap: string; lines: { cond: string; rows: ProbeRow[] }[] }>();
  for (const c of p.conditions) {
    for (const r of c.rows) {
      if (r.layer === null || metricBreakdown(r.task, r.metric)) continue; // headline metrics only
      const k = [r.task, r.metric, r.model, tapFamily(r.tap)].join('\u0000');
      if (!byKey.has(k)) byKey.set(k, { task: r.task, metric: r.metric, model: r.model, tap: tapFamily(r.tap), lines: [] });
      const entry = byKey.get(k)!;
      let line = entry.lines.find((l) => l.cond === c.name);
      if (!line) entry.lines.push((line = { cond: c.name, rows: [] }));
      line.rows.push(r);
    }
  }
  const figs: string[] = [];
  const tableRows: string[][] = [];
  for (const e of byKey.values()) {
    const curves = e.lines.map((l) => ({ cond: l.cond, curve: layerCurves(l.rows)[0].curves[0] }));
    const g: CurveGroup = { task: e.task, metric: e.metric, curves: curves.map((c) => c.curve) };
    const title = `${e.task}: ${e.metric} by layer per prefix (${e.tap})`;
    const svg = await curveChart(g, `${e.task}: ${e.metric} by layer per prefix`, (c) => curves.find((x) => x.curve === c)!.cond, [], `${e.model}, ${e.tap}`);
    const slug = plot({ slug: `prefix-${slugify(e.task)}-${slugify(e.metric)}-${slugify(e.model)}-${slugify(e.tap)}`, title, svg });
    figs.push(figure(slug, inlineSvg(svg), `${e.model}; rings mark each condition's peak layer.`));
    const none = curves.find((c) => c.cond === 'none');
    const nonePeak = none ? curvePeak(none.curve, e.metric) : undefined;
    for (const c of curves) {
      const peak = curvePeak(c.curve, e.metric);
      const atNoneLayer = nonePeak ? c.curve.points.find((pt) => pt.layer === nonePeak.layer)?.mean : undefined;
      const prefixText = p.conditions.find((x) => x.name === c.cond)?.prefix ?? '';
      const meaning = PREFIX_CONDITIONS[c.cond];
      const shown = prefixText ? (meaning && prefixText.includes('{class}') ? `${prefixText.trim()} (${meaning})` : prefixText) : '(none)';
      tableRows.push([td(e.task), td(e.metric), td(c.cond), td(shown), td(peak.layer), numCell(peak.mean, metricFmt),
        deltaCell(peak.mean, nonePeak?.mean, metricFmt), numCell(atNoneLayer, metricFmt), deltaCell(atNoneLayer, nonePeak?.mean, metricFmt)]);
    }
  }
  if (figs.length === 0) return section('prefix', 'Text-prefix comparison', '<p class="note">results/prefix.json has no per-layer rows.</p>');
  const tbl = table('prefix-table', ['task', 'metric', 'condition', 'prefix', 'peak layer', 'peak value', 'Δ vs none (peak)', 'value at none\'s peak layer', 'Δ at that layer'], tableRows);
  return section('prefix', 'Text-prefix comparison', `<div class="grid">${figs.join('')}</div>${tbl}`);
}
