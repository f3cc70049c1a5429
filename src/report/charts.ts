// Report charts as vega-lite specs rendered server-side to SVG by vega (no browser, no canvas: vega estimates text
// widths, so the font family and sizes are set explicitly). Layer-wise line charts with peak markers, histograms with a
// threshold rule, and a boolean layer x position matrix. Every function returns a standalone SVG document string (with
// xmlns, so it can be written to a .svg file or rasterised by sharp); `inlineSvg` strips the namespaces for HTML.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
/** Fonts present on the machines that rasterise (DejaVu ships with librsvg/fontconfig); no web fonts. */
const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
const SOLID: number[] = [1, 0];
const DASHED: number[] = [6, 3];
const DOTTED: number[] = [2, 3];
/**
 * Numeric axis labels with up to 6 significant digits, trailing zeros trimmed. A `format` specifier would not do: vega
 * derives the precision from the tick step, which turns 500/1000/1500 into 5e+2/1e+3/2e+3.
 */
const NUM_LABELS = "format(datum.value, '~g')";

/** Shared look: explicit fonts and sizes (text is measured by estimate without canvas), white background. */
const CONFIG = {
  font: FONT,
  background: '#ffffff',
  title: { fontSize: 13, font: FONT, fontWeight: 'bold' as const, anchor: 'middle' as const, subtitleFont: FONT, subtitleFontSize: 11, subtitleColor: '#555555' },
  axis: { labelFontSize: 10, titleFontSize: 11, labelFont: FONT, titleFont: FONT, titleFontWeight: 'normal' as const, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 11, labelFont: FONT, titleFont: FONT, labelLimit: 300, symbolStrokeWidth: 2 },
  text: { font: FONT, fontSize: 10 },
  view: { stroke: '#333333' },
};

/** vega-lite spec -> vega spec -> headless view -> SVG document. */
export async function renderSpec(spec: TopLevelSpec): Promise<string> {
  const vgSpec = compile({ config: CONFIG, ...spec } as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Compact tick/label text: 4 significant digits, exponent form for very large/small magnitudes. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 10000 || a < 0.001) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

export interface LineSeries {
  label: string;
  /** Points sorted by x (layer). */
  points: { x: number; y: number }[];
  color?: string;
  dashed?: boolean;
  /** Seed spread per point (e.g. mean ± std over seeds), drawn as a translucent band behind the line. */
  band?: { x: number; lo: number; hi: number }[];
}

export interface LineChartSpec {
  title: string;
  /** A second, smaller title line (keeps long titles from widening the chart). */
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  /** Mark each series' maximum (or minimum when lowerIsBetter) with a ring and a label "L<x>: <y>". */
  markPeaks?: boolean;
  lowerIsBetter?: boolean;
  /** Horizontal reference lines (e.g. the projector-output score), drawn dotted and listed in the legend. */
  refLines?: { label: string; y: number; color?: string }[];
  /** Plot-area width in pixels (axes and legend come on top). */
  width?: number;
  height?: number;
  /** Fixed y domain (e.g. [0, 1.05] for curves normalised to their peak); default: fitted to the data. */
  yDomain?: [number, number];
}

/** The index of the best point of a series (first one on ties). */
export function peakIndex(points: { y: number }[], lowerIsBetter = false): number {
  let best = 0;
  for (let i = 1; i < points.length; i++) {
    if (lowerIsBetter ? points[i].y < points[best].y : points[i].y > points[best].y) best = i;
  }
  return best;
}

/**
 * A y domain fitted to the data with a little headroom: a constant series gets a small window around its value (not
 * -1..1 around 0), and data that never goes below zero (scores, fractions) is not padded below zero.
 */
export function fittedDomain(lo: number, hi: number): [number, number] {
  const span = hi - lo;
  const pad = span > 0 ? span * 0.08 : Math.max(Math.abs(hi) * 0.1, 0.05);
  return [lo >= 0 && lo - pad < 0 ? 0 : lo - pad, hi + pad];
}

/** Legend entries must be distinct scale-domain values: repeated labels get " (2)", " (3)"... */
function uniqueLabels(labels: string[]): string[] {
  const seen = new Map<string, number>();
  return labels.map((l) => {
    const k = (seen.get(l) ?? 0) + 1;
    seen.set(l, k);
    return k === 1 ? l : `${l} (${k})`;
  });
}

interface PeakLabel { series: string; x: number; y: number; labelX: number; labelY: number; text: string }

/**
 * Peak labels sit 9 px above their ring and stack upwards while they would overlap an earlier one (about 70 x 12 px
 * each); a label of a peak at the plot's left/right edge is moved inwards so it stays inside the plot. Positions are
 * computed in pixels from the chart's fixed domains and handed to vega in data units; the top of the y domain grows
 * until every label fits inside the plot.
 */
function placePeakLabels(peaks: Omit<PeakLabel, 'labelX' | 'labelY'>[], x: [number, number], y: [number, number], w: number, h: number) {
  let yHi = y[1];
  for (let attempt = 0; ; attempt++) {
    const pxPerY = h / (yHi - y[0]);
    const px = (v: number) => (x[1] === x[0] ? w / 2 : ((v - x[0]) / (x[1] - x[0])) * w);
    const dataX = (pixel: number) => (x[1] === x[0] ? x[0] : x[0] + (pixel / w) * (x[1] - x[0]));
    const placed: { x: number; y: number }[] = [];
    const out: PeakLabel[] = peaks.map((p) => {
      const half = p.text.length * 3.2; // about half the label's width at 10 px
      const lx = Math.min(Math.max(px(p.x), half), w - half);
      let up = 9; // pixels above the peak
      while (placed.some((q) => Math.abs(q.x - lx) < 70 && Math.abs(q.y - (p.y * pxPerY + up)) < 12)) up += 12;
      placed.push({ x: lx, y: p.y * pxPerY + up });
      return { ...p, labelX: dataX(lx), labelY: p.y + up / pxPerY };
    });
    const top = Math.max(...out.map((p) => p.labelY + 12 / pxPerY));
    if (top <= yHi || attempt === 3) return { labels: out, yHi: Math.max(yHi, top) };
    yHi = top;
  }
}

export async function lineChart(spec: LineChartSpec): Promise<string> {
  const width = spec.width ?? 450;
  const height = spec.height ?? 240;
  const refs = spec.refLines ?? [];
  const names = uniqueLabels([...spec.series.map((s) => s.label), ...refs.map((r) => r.label)]);
  const colors = [...spec.series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]), ...refs.map((r) => r.color ?? '#777777')];
  const dashes = [...spec.series.map((s) => (s.dashed ? DASHED : SOLID)), ...refs.map(() => DOTTED)];
  const lines = spec.series.flatMap((s, i) => s.points.map((p) => ({ series: names[i], layer: p.x, value: p.y })));
  const refRows = refs.map((r, i) => ({ series: names[spec.series.length + i], value: r.y }));

  const bands = spec.series.flatMap((s, i) => (s.band ?? []).map((b) => ({ series: names[i], layer: b.x, lo: b.lo, hi: b.hi })));

  const xs = lines.map((p) => p.layer);
  const ys = [...lines.map((p) => p.value), ...refRows.map((r) => r.value), ...bands.flatMap((b) => [b.lo, b.hi])];
  const xDomain: [number, number] = [Math.min(...xs), Math.max(...xs)];
  let yDomain = spec.yDomain ?? fittedDomain(Math.min(...ys), Math.max(...ys));

  const peaks = spec.markPeaks
    ? spec.series.filter((s) => s.points.length > 0).map((s) => {
      const p = s.points[peakIndex(s.points, spec.lowerIsBetter)];
      return { series: names[spec.series.indexOf(s)], x: p.x, y: p.y, text: `L${p.x}: ${formatTick(p.y)}` };
    })
    : [];
  let peakLabels: PeakLabel[] = [];
  if (peaks.length) {
    const placed = placePeakLabels(peaks, xDomain, yDomain, width, height);
    peakLabels = placed.labels;
    yDomain = [yDomain[0], placed.yHi];
  }

  const x = { field: 'layer', type: 'quantitative' as const, title: spec.xLabel,
    scale: { domain: xDomain, nice: false, zero: false }, axis: { tickMinStep: 1, format: 'd' } };
  const y = { field: 'value', type: 'quantitative' as const, title: spec.yLabel,
    scale: { domain: yDomain, nice: false, zero: false }, axis: { labelExpr: NUM_LABELS } };
  const color = { field: 'series', type: 'nominal' as const, title: null, scale: { domain: names, range: colors } };
  const strokeDash = { field: 'series', type: 'nominal' as const, title: null, scale: { domain: names, range: dashes } };
  const noLegend = color;

  const layer: object[] = [
    { name: 'line', data: { values: lines }, mark: { type: 'line', strokeWidth: 2, point: { size: 14, filled: true } },
      encoding: { x, y, color, strokeDash } },
  ];
  if (bands.length) {
    layer.unshift({ name: 'seed_band', data: { values: bands }, mark: { type: 'area', opacity: 0.18 },
      encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color: { ...color, legend: null } } });
  }
  if (refRows.length) {
    layer.unshift({ name: 'reference', data: { values: refRows }, mark: { type: 'rule', strokeWidth: 1.5 },
      encoding: { y, color, strokeDash } });
  }
  if (peakLabels.length) {
    layer.push(
      // A white halo under each label keeps it legible where it crosses a line or grid.
      { name: 'peak_label_halo', data: { values: peakLabels }, mark: { type: 'text', fontSize: 10, baseline: 'alphabetic', align: 'center',
        stroke: '#ffffff', strokeWidth: 3, strokeOpacity: 0.9, fill: '#ffffff' },
        encoding: { x: { ...x, field: 'labelX' }, y: { ...y, field: 'labelY' }, text: { field: 'text' } } },
      { name: 'peak_label', data: { values: peakLabels }, mark: { type: 'text', fontSize: 10, baseline: 'alphabetic', align: 'center' },
        encoding: { x: { ...x, field: 'labelX' }, y: { ...y, field: 'labelY' }, color: noLegend, text: { field: 'text' } } },
      // Rings last: a stacked label of another line must not hide a peak.
      { name: 'peak', data: { values: peakLabels }, mark: { type: 'point', filled: false, size: 110, strokeWidth: 2, opacity: 1 },
        encoding: { x: { ...x, field: 'x' }, y: { ...y, field: 'y' }, color: noLegend } },
    );
  }
  return renderSpec({
    title: spec.subtitle ? { text: spec.title, subtitle: spec.subtitle } : spec.title, width, height, layer,
    resolve: { scale: { x: 'shared', y: 'shared' } },
    config: { ...CONFIG, legend: { ...CONFIG.legend, offset: 6, orient: 'bottom', columns: 1, symbolType: 'stroke', direction: 'vertical', labelLimit: 520 } },
  } as TopLevelSpec);
}

export interface HistogramSpec {
  title: string;
  xLabel: string;
  edges: number[];
  counts: number[];
  threshold?: number;
  width?: number;
  height?: number;
}

export async function histogram(spec: HistogramSpec): Promise<string> {
  const bins = spec.counts.map((count, i) => ({ lo: spec.edges[i], hi: spec.edges[i + 1], count })).filter((b) => b.count > 0);
  const lo = Math.min(spec.edges[0], spec.threshold ?? Infinity);
  const hi = Math.max(spec.edges[spec.edges.length - 1], spec.threshold ?? -Infinity);
  const x = { field: 'lo', type: 'quantitative' as const, title: spec.xLabel,
    scale: { domain: [lo, hi], nice: false, zero: false }, axis: { labelExpr: NUM_LABELS, tickCount: 4 } };
  const layer: object[] = [
    { name: 'bins', data: { values: bins }, mark: { type: 'rect', color: '#4e79a7', stroke: '#ffffff', strokeWidth: 0.5 },
      encoding: { x, x2: { field: 'hi' }, y: { field: 'count', type: 'quantitative', title: 'positions', axis: { tickMinStep: 1, format: 'd', tickCount: 4 } }, y2: { datum: 0 } } },
  ];
  if (spec.threshold !== undefined) {
    const t = [{ lo: spec.threshold, text: `τ=${formatTick(spec.threshold)}` }];
    layer.push(
      { name: 'threshold', data: { values: t }, mark: { type: 'rule', color: '#e15759', strokeWidth: 2, strokeDash: [5, 3] }, encoding: { x } },
      { name: 'threshold_label', data: { values: t }, mark: { type: 'text', color: '#e15759', align: 'left', baseline: 'top', dx: 4, y: 2 },
        encoding: { x, text: { field: 'text' } } },
    );
  }
  return renderSpec({ title: spec.title, width: spec.width ?? 260, height: spec.height ?? 150, layer } as TopLevelSpec);
}

export interface FlagMatrixSpec {
  title: string;
  rows: number; // layers
  cols: number; // positions
  /** flagged[row] = ascending column indices that are set. */
  flagged: number[][];
  rowLabel: (row: number) => string;
  xLabel: string;
  yLabel: string;
  /** Rows highlighted (e.g. blocked layers). */
  highlightRows?: number[];
}

/** Consecutive column indices merged into [start, end) runs: one rect per run keeps the SVG small on wide grids. */
export function columnRuns(cols: number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const c of cols) {
    const last = runs[runs.length - 1];
    if (last && last[1] === c) last[1] = c + 1;
    else runs.push([c, c + 1]);
  }
  return runs;
}

/** A rows x cols boolean matrix as a heatmap of rect marks (set cells only, runs merged), e.g. input-agnostic positions per layer. */
export async function flagMatrix(spec: FlagMatrixSpec): Promise<string> {
  const cell = Math.max(4, Math.min(14, Math.floor(360 / spec.rows)));
  const labels = Array.from({ length: spec.rows }, (_, r) => spec.rowLabel(r));
  const labelEvery = Math.ceil(spec.rows / 14);
  const cells = spec.flagged.flatMap((cols, row) => columnRuns(cols).map(([start, end]) => ({ row: labels[row], start, end })));
  const shaded = (spec.highlightRows ?? []).map((row) => ({ row: labels[row], start: 0, end: spec.cols }));
  // Cell c spans [c, c + 1): ticks sit at cell centres (c + 0.5) and are labelled with the position c, not the edges.
  const step = Math.max(1, Math.ceil(spec.cols / 16));
  const ticks = Array.from({ length: Math.ceil(spec.cols / step) }, (_, k) => k * step + 0.5);
  const x = { field: 'start', type: 'quantitative' as const, title: spec.xLabel,
    scale: { domain: [0, spec.cols], nice: false, zero: false }, axis: { values: ticks, labelExpr: 'format(datum.value - 0.5, "d")', grid: false } };
  const y = { field: 'row', type: 'ordinal' as const, title: spec.yLabel,
    scale: { domain: labels, paddingInner: 0, paddingOuter: 0 }, axis: { values: labels.filter((_, i) => i % labelEvery === 0), labelFontSize: 9 } };
  const layer: object[] = [
    { name: 'flagged', data: { values: cells }, mark: { type: 'rect', color: '#e15759' }, encoding: { x, x2: { field: 'end' }, y } },
  ];
  if (shaded.length) {
    layer.unshift({ name: 'blocked', data: { values: shaded }, mark: { type: 'rect', color: '#fdf0d5' }, encoding: { x, x2: { field: 'end' }, y } });
  }
  return renderSpec({ title: spec.title, width: 480, height: spec.rows * cell, layer } as TopLevelSpec);
}

/** An SVG document as an inline HTML element: the namespaces are implied in HTML, so their URLs are dropped. */
export function inlineSvg(svg: string): string {
  return svg.replace(' xmlns="http://www.w3.org/2000/svg"', '').replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', '');
}
