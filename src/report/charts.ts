// Server-side SVG charts (no browser, no external resources): layer-wise line charts with peak markers, histograms
// with a threshold line, and a sparse boolean layer x position matrix. Every function returns a standalone SVG document
// string (with xmlns, so it can be written to a .svg file or rasterised); `inlineSvg` strips the namespace for HTML.

export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Round to 4 significant decimals for coordinates (keeps SVG small and deterministic). */
function r(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** "Nice" tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi] with about `target` ticks. */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 10000 || a < 0.001) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

interface Frame { width: number; height: number; left: number; right: number; top: number; bottom: number }

function svgOpen(width: number, height: number, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" `
    + `font-family="${FONT}" font-size="11" role="img" aria-label="${escapeXml(title)}">`
    + `<rect width="${width}" height="${height}" fill="#ffffff"/>`
    + `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(title)}</text>`;
}

/** Axes with ticks and labels; returns the SVG fragment plus scale functions for data -> pixels. */
function axes(f: Frame, x: [number, number], y: [number, number], xLabel: string, yLabel: string, xTicks: number[], yTicks: number[]) {
  const pw = f.width - f.left - f.right;
  const ph = f.height - f.top - f.bottom;
  const sx = (v: number) => f.left + (x[1] === x[0] ? pw / 2 : ((v - x[0]) / (x[1] - x[0])) * pw);
  const sy = (v: number) => f.top + ph - (y[1] === y[0] ? ph / 2 : ((v - y[0]) / (y[1] - y[0])) * ph);
  const parts: string[] = [];
  for (const t of yTicks) {
    parts.push(`<line x1="${f.left}" x2="${f.left + pw}" y1="${r(sy(t))}" y2="${r(sy(t))}" stroke="#e6e6e6"/>`);
    parts.push(`<text x="${f.left - 6}" y="${r(sy(t) + 4)}" text-anchor="end">${formatTick(t)}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<line x1="${r(sx(t))}" x2="${r(sx(t))}" y1="${f.top + ph}" y2="${f.top + ph + 4}" stroke="#333"/>`);
    parts.push(`<text x="${r(sx(t))}" y="${f.top + ph + 16}" text-anchor="middle">${formatTick(t)}</text>`);
  }
  parts.push(`<rect x="${f.left}" y="${f.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${f.left + pw / 2}" y="${f.top + ph + 32}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${f.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`);
  return { svg: parts.join(''), sx, sy, pw, ph };
}

export interface LineSeries {
  label: string;
  /** Points sorted by x (layer). */
  points: { x: number; y: number }[];
  color?: string;
  dashed?: boolean;
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  /** Mark each series' maximum (or minimum when lowerIsBetter) with a ring and a label. */
  markPeaks?: boolean;
  lowerIsBetter?: boolean;
  /** Horizontal reference lines (e.g. the projector-output score). */
  refLines?: { label: string; y: number; color?: string }[];
  width?: number;
}

/** The index of the best point of a series (first one on ties). */
export function peakIndex(points: { y: number }[], lowerIsBetter = false): number {
  let best = 0;
  for (let i = 1; i < points.length; i++) {
    if (lowerIsBetter ? points[i].y < points[best].y : points[i].y > points[best].y) best = i;
  }
  return best;
}

export function lineChart(spec: LineChartSpec): string {
  const width = spec.width ?? 640;
  const legendRows = Math.ceil(spec.series.length / 2) + Math.ceil((spec.refLines?.length ?? 0) / 2);
  const height = 300 + legendRows * 16;
  const f: Frame = { width, height, left: 58, right: 16, top: 28, bottom: 44 + legendRows * 16 };
  const xs = spec.series.flatMap((s) => s.points.map((p) => p.x));
  const ys = [...spec.series.flatMap((s) => s.points.map((p) => p.y)), ...(spec.refLines ?? []).map((l) => l.y)];
  const xLo = Math.min(...xs);
  const xHi = Math.max(...xs);
  let yLo = Math.min(...ys);
  let yHi = Math.max(...ys);
  const pad = (yHi - yLo) * 0.08 || Math.abs(yHi) * 0.1 || 1;
  yLo -= pad;
  yHi += spec.markPeaks ? pad * 2 : pad; // room for the peak labels above the curves
  const yTicks = niceTicks(yLo, yHi, 5);
  const xTicks = niceTicks(xLo, xHi, Math.min(10, Math.max(1, xHi - xLo))).filter((t) => Number.isInteger(t));
  const a = axes(f, [xLo, xHi], [yLo, yHi], spec.xLabel, spec.yLabel, xTicks, yTicks);
  const parts = [svgOpen(width, height, spec.title), a.svg];
  (spec.refLines ?? []).forEach((l) => {
    parts.push(`<line x1="${f.left}" x2="${f.left + a.pw}" y1="${r(a.sy(l.y))}" y2="${r(a.sy(l.y))}" stroke="${l.color ?? '#777'}" stroke-dasharray="2 3" stroke-width="1.5"/>`);
  });
  const placed: { x: number; y: number }[] = [];
  spec.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${r(a.sx(p.x))} ${r(a.sy(p.y))}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 3"' : ''}/>`);
    for (const p of s.points) parts.push(`<circle cx="${r(a.sx(p.x))}" cy="${r(a.sy(p.y))}" r="2" fill="${color}"/>`);
    if (spec.markPeaks && s.points.length > 0) {
      const p = s.points[peakIndex(s.points, spec.lowerIsBetter)];
      parts.push(`<circle class="peak" cx="${r(a.sx(p.x))}" cy="${r(a.sy(p.y))}" r="6" fill="none" stroke="${color}" stroke-width="2"/>`);
      // Stack labels upwards while they would overlap an earlier one (about 70 x 12 px each).
      let ly = a.sy(p.y) - 9;
      const lx = a.sx(p.x);
      while (placed.some((q) => Math.abs(q.x - lx) < 70 && Math.abs(q.y - ly) < 12)) ly -= 12;
      placed.push({ x: lx, y: ly });
      parts.push(`<text x="${r(lx)}" y="${r(ly)}" text-anchor="middle" fill="${color}" font-size="10">L${p.x}: ${formatTick(p.y)}</text>`);
    }
  });
  // Legend: two columns below the x-axis label.
  const legend = [
    ...spec.series.map((s, i) => ({ label: s.label, color: s.color ?? PALETTE[i % PALETTE.length], dash: s.dashed ? '6 3' : '' })),
    ...(spec.refLines ?? []).map((l) => ({ label: l.label, color: l.color ?? '#777', dash: '2 3' })),
  ];
  const colW = (width - f.left - f.right) / 2;
  legend.forEach((l, i) => {
    const x = f.left + (i % 2) * colW;
    const y = height - f.bottom + 48 + Math.floor(i / 2) * 16;
    parts.push(`<line x1="${r(x)}" x2="${r(x + 22)}" y1="${y - 4}" y2="${y - 4}" stroke="${l.color}" stroke-width="2"${l.dash ? ` stroke-dasharray="${l.dash}"` : ''}/>`);
    parts.push(`<text x="${r(x + 28)}" y="${y}">${escapeXml(l.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
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

export function histogram(spec: HistogramSpec): string {
  const width = spec.width ?? 320;
  const height = spec.height ?? 220;
  const f: Frame = { width, height, left: 48, right: 10, top: 26, bottom: 42 };
  const lo = Math.min(spec.edges[0], spec.threshold ?? Infinity);
  const hi = Math.max(spec.edges[spec.edges.length - 1], spec.threshold ?? -Infinity);
  const maxCount = Math.max(1, ...spec.counts);
  const a = axes(f, [lo, hi], [0, maxCount * 1.05], spec.xLabel, 'positions', niceTicks(lo, hi, 4), niceTicks(0, maxCount, 4));
  const parts = [svgOpen(width, height, spec.title), a.svg];
  spec.counts.forEach((c, i) => {
    if (c === 0) return;
    const x0 = a.sx(spec.edges[i]);
    const x1 = a.sx(spec.edges[i + 1]);
    const y = a.sy(c);
    parts.push(`<rect class="bin" x="${r(x0)}" y="${r(y)}" width="${r(Math.max(0.5, x1 - x0 - 0.5))}" height="${r(a.sy(0) - y)}" fill="#4e79a7"/>`);
  });
  if (spec.threshold !== undefined) {
    const x = a.sx(spec.threshold);
    parts.push(`<line class="threshold" x1="${r(x)}" x2="${r(x)}" y1="${f.top}" y2="${f.top + a.ph}" stroke="#e15759" stroke-width="2" stroke-dasharray="5 3"/>`);
    parts.push(`<text x="${r(x + 4)}" y="${f.top + 12}" fill="#e15759" font-size="10">τ=${formatTick(spec.threshold)}</text>`);
  }
  parts.push('</svg>');
  return parts.join('');
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

/** A rows x cols boolean matrix drawn sparsely (only set cells become rects), e.g. input-agnostic positions per layer. */
export function flagMatrix(spec: FlagMatrixSpec): string {
  const width = 720;
  const cell = Math.max(4, Math.min(14, Math.floor(360 / spec.rows)));
  const f: Frame = { width, height: 0, left: 58, right: 16, top: 28, bottom: 44 };
  const height = f.top + spec.rows * cell + f.bottom;
  const pw = width - f.left - f.right;
  const cw = pw / spec.cols;
  const parts = [svgOpen(width, height, spec.title)];
  for (const row of spec.highlightRows ?? []) {
    parts.push(`<rect x="${f.left}" y="${f.top + row * cell}" width="${pw}" height="${cell}" fill="#fdf0d5"/>`);
  }
  spec.flagged.forEach((cols, row) => {
    for (const c of cols) parts.push(`<rect x="${r(f.left + c * cw)}" y="${f.top + row * cell}" width="${r(Math.max(1, cw))}" height="${cell}" fill="#e15759"/>`);
  });
  parts.push(`<rect x="${f.left}" y="${f.top}" width="${pw}" height="${spec.rows * cell}" fill="none" stroke="#333"/>`);
  const labelEvery = Math.ceil(spec.rows / 14);
  for (let row = 0; row < spec.rows; row += labelEvery) {
    parts.push(`<text x="${f.left - 6}" y="${f.top + row * cell + cell - 1}" text-anchor="end" font-size="9">${escapeXml(spec.rowLabel(row))}</text>`);
  }
  for (const t of niceTicks(0, spec.cols - 1, 6).filter(Number.isInteger)) {
    parts.push(`<text x="${r(f.left + (t + 0.5) * cw)}" y="${f.top + spec.rows * cell + 14}" text-anchor="middle">${t}</text>`);
  }
  parts.push(`<text x="${f.left + pw / 2}" y="${height - 10}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${f.top + (spec.rows * cell) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}

/** An SVG document as an inline HTML element: the namespace is implied in HTML, so the URL is dropped. */
export function inlineSvg(svg: string): string {
  return svg.replace(' xmlns="http://www.w3.org/2000/svg"', '');
}
