// Report sections built from probe rows: run header, layer-wise curves, encoder comparison, prefix comparison.
import type { Manifest, PrefixResults } from '../results/schema.js';
import type { ProbeRow } from '../results/schema.js';
import { curvePeak, encoderComparison, layerCurves, lowerIsBetter, projectorReference, tapFamily, type CurveGroup } from './analysis.js';
import { inlineSvg, lineChart, PALETTE } from './charts.js';
import { esc, figure, fixed, numCell, section, table, td, deltaCell } from './html.js';

export interface Plot { slug: string; title: string; svg: string }
/** Records a plot; returns its final slug (made unique across the report). */
export type PlotSink = (p: Plot) => string;

export function slugify(s: string): string {
  return s.toLowerCase().replace(/\{l\}/g, 'L').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** Probe metrics are shown with 3 decimals; their unit is whatever the probe wrote (fraction for mIoU/PCK). */
const metricFmt = (v: number) => fixed(v, 3);

export function headerSection(m: Manifest, runDir: string): string {
  const models = table('models', ['model', 'revision', 'config hash', 'LM layers', 'vision layers'],
    m.models.map((x) => [td(x.id), td(x.revision ?? '–'), td(x.configHash), td(x.lmLayers), td(x.visionLayers ?? '–')]));
  const datasets = m.datasets.length
    ? table('datasets', ['dataset', 'split', 'hash', 'items'], m.datasets.map((d) => [td(d.name), td(d.split ?? '–'), td(d.hash), td(d.count ?? '–')]))
    : '';
  const timings = Object.entries(m.timings);
  const meta = table('run-meta', ['field', 'value'], [
    [td('run directory'), td(runDir)], [td('kvlens version'), td(m.kvlensVersion)], [td('created'), td(m.createdAt)],
    [td('dtype'), td(m.dtype)], [td('device'), td(m.device)], [td('seeds'), td(m.seeds.join(', '))],
    ...timings.map(([k, v]) => [td(`time: ${k}`), `<td class="num" data-value="${v}">${v.toFixed(1)} s</td>`]),
  ]);
  const prompts = Object.entries(m.prompts).map(([k, v]) => `<details><summary>prompt: ${esc(k)}</summary><pre>${esc(v)}</pre></details>`).join('');
  return section('run', `Run: ${m.experiment}`, `<div class="meta">${meta}${models}${datasets}</div>${prompts}${m.notes ? `<p>${esc(m.notes)}</p>` : ''}`);
}

type RefLine = { label: string; y: number; color?: string };
const REF_COLORS = ['#555555', '#999999'];

function curveChart(g: CurveGroup, title: string, labelOf: (c: CurveGroup['curves'][number]) => string, refLines: RefLine[] = [], subtitle?: string): Promise<string> {
  return lineChart({
    title, subtitle, xLabel: 'layer', yLabel: g.metric, markPeaks: true, lowerIsBetter: lowerIsBetter(g.metric), refLines,
    series: g.curves.map((c, i) => ({ label: labelOf(c), points: c.points.map((p) => ({ x: p.layer, y: p.mean })), color: PALETTE[i % PALETTE.length] })),
  });
}

/** One dotted line per model of the group at its projector reference (projector.out, else image.packed; seed mean). */
function projectorLines(rows: ProbeRow[], g: CurveGroup, multiModel: boolean): RefLine[] {
  const models = [...new Set(g.curves.map((c) => c.model))];
  return models.flatMap((model, i) => {
    const ref = projectorReference(rows.filter((r) => r.model === model && r.task === g.task && r.metric === g.metric));
    return ref ? [{ label: `${multiModel ? `${model} ` : ''}projector output (${ref.tap})`, y: ref.value, color: REF_COLORS[i % REF_COLORS.length] }] : [];
  });
}

export async function curvesSection(rows: ProbeRow[], plot: PlotSink): Promise<string> {
  const groups = layerCurves(rows);
  if (groups.length === 0) return section('curves', 'Layer-wise probe curves', '<p class="note">results/probes has no per-layer rows.</p>');
  const multiModel = new Set(rows.map((r) => r.model)).size > 1;
  const figs: string[] = [];
  const peakRows: string[][] = [];
  for (const g of groups) {
    const title = `${g.task}: ${g.metric} by layer`;
    const refs = projectorLines(rows, g, multiModel);
    const svg = await curveChart(g, title, (c) => (multiModel ? `${c.model} ${c.tap}` : c.tap), refs);
    const slug = plot({ slug: `curve-${slugify(g.task)}-${slugify(g.metric)}`, title, svg });
    const seeds = Math.max(...g.curves.flatMap((c) => c.points.map((p) => p.seeds)));
    const refNote = refs.length ? ' Dotted: the projector output (no layer), the reference the LM layers start from.' : '';
    figs.push(figure(slug, inlineSvg(svg), `Mean over ${seeds} seed(s); rings mark each line's peak layer.${refNote}`));
    for (const c of g.curves) {
      const p = curvePeak(c, g.metric);
      peakRows.push([td(g.task), td(g.metric), td(c.model), td(c.tap), td(p.layer), numCell(p.mean, metricFmt), numCell(p.std, metricFmt), td(p.seeds), td(Math.round(p.n))]);
    }
  }
  const peaks = table('peaks', ['task', 'metric', 'model', 'tap', 'peak layer', 'value', 'std over seeds', 'seeds', 'n'], peakRows, 'Peak layer per line');
  return section('curves', 'Layer-wise probe curves', `<div class="grid">${figs.join('')}</div>${peaks}`);
}

export function encoderSection(rows: ProbeRow[]): string {
  const cmp = encoderComparison(rows);
  if (cmp.length === 0) {
    return section('encoders', 'Encoder comparison', '<p class="note">No projector.out, image.packed or siglip.* probe rows in this run; the comparison needs at least one of them.</p>');
  }
  const body = cmp.map((e) => {
    const vals = [e.projector?.value, e.siglip?.value, e.bestLm?.value].filter((v): v is number => v !== undefined);
    const best = lowerIsBetter(e.metric) ? Math.min(...vals) : Math.max(...vals);
    return [td(e.model), td(e.task), td(e.metric), numCell(e.projector?.value, metricFmt, { best: e.projector?.value === best, title: e.projector?.tap }),
      numCell(e.siglip?.value, metricFmt, { best: e.siglip?.value === best, title: e.siglip?.tap }),
      numCell(e.bestLm?.value, metricFmt, { best: e.bestLm?.value === best }), td(e.bestLm ? `${e.bestLm.tap.replace('{L}', String(e.bestLm.layer))}` : '–')];
  });
  return section('encoders', 'Encoder comparison',
    table('encoder-table', ['model', 'task', 'metric', 'projector output', 'SigLIP (no MLM finetuning)', 'best LM layer', 'best LM tap'], body)
    + '<p>Bold: the best of the three representations. Projector output: <code>projector.out</code>, or <code>image.packed</code> (the same output as the '
    + 'packed image tokens the LM receives) when the run has no projector.out rows; hover a value for its tap. LM values are seed means at the best '
    + 'layer over all lm.* taps.</p>');
}

export async function prefixSection(p: PrefixResults, plot: PlotSink): Promise<string> {
  // Curves per (task, metric, model, tap family) with one line per prefix condition.
  type Key = string;
  const byKey = new Map<Key, { task: string; metric: string; model: string; tap: string; lines: { cond: string; rows: ProbeRow[] }[] }>();
  for (const c of p.conditions) {
    for (const r of c.rows) {
      if (r.layer === null) continue;
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
      tableRows.push([td(e.task), td(e.metric), td(c.cond), td(prefixText || '(none)'), td(peak.layer), numCell(peak.mean, metricFmt),
        deltaCell(peak.mean, nonePeak?.mean, metricFmt), numCell(atNoneLayer, metricFmt), deltaCell(atNoneLayer, nonePeak?.mean, metricFmt)]);
    }
  }
  if (figs.length === 0) return section('prefix', 'Text-prefix comparison', '<p class="note">results/prefix.json has no per-layer rows.</p>');
  const tbl = table('prefix-table', ['task', 'metric', 'condition', 'prefix', 'peak layer', 'peak value', 'Δ vs none (peak)', 'value at none\'s peak layer', 'Δ at that layer'], tableRows);
  return section('prefix', 'Text-prefix comparison', `<div class="grid">${figs.join('')}</div>${tbl}`);
}
