// The input-agnostic threshold τ on the key variance, and the histograms the report draws.
//
// The paper picks τ (≈450 for LLaVA-OneVision 7B) "between the peaks of a bimodal distribution". Variances span
// orders of magnitude, so the automatic choice works on log10(variance): a histogram, Gaussian-smoothed, then the
// lowest point between the highest peak and the highest other peak separated from it by a real dip. When no such
// pair exists the distribution is not bimodal and Otsu's threshold on the log-variance is used instead. The method
// is always recorded with the value.

import { KvlensUsageError } from '../../util/errors.js';

export type ThresholdSpec = number | 'auto';

export interface ThresholdOptions {
  /** Histogram bins over the log10-variance range (default 64). */
  readonly bins?: number;
  /** Gaussian smoothing of the histogram, in bins (default 1.5). */
  readonly smoothSigma?: number;
  /** The second mode's smoothed height must be at least this fraction of the first's (default 0.02). */
  readonly minPeakFraction?: number;
  /** The dip between the modes must be at most this fraction of the lower mode's height (default 0.6). */
  readonly maxValleyRatio?: number;
}

export interface ThresholdChoice {
  readonly value: number;
  /** 'fixed' | 'bimodal-valley' (log10-variance histogram) | 'otsu-log' (fallback) | 'degenerate' (no spread). */
  readonly method: 'fixed' | 'bimodal-valley' | 'otsu-log' | 'degenerate';
  readonly note: string;
}

export interface Histogram {
  /** Ascending edges; edges.length === counts.length + 1. */
  readonly edges: number[];
  readonly counts: number[];
}

/** Equal-width histogram of `values` over [min, max]; a constant sample gets one unit-wide bin around its value. */
export function histogram(values: ArrayLike<number>, bins: number): Histogram {
  if (values.length === 0) throw new KvlensUsageError('histogram of no values');
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  if (!(hi > lo)) {
    const half = Math.max(Math.abs(lo) * 1e-6, 0.5);
    return { edges: [lo - half, lo + half], counts: [values.length] };
  }
  const counts = new Array<number>(bins).fill(0);
  const w = (hi - lo) / bins;
  for (let i = 0; i < values.length; i++) counts[Math.min(bins - 1, Math.floor((values[i] - lo) / w))]++;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + i * w));
  return { edges, counts };
}

/**
 * log10 of the variances. Exact zeros (keys identical in every image) have no logarithm: they are placed one decade
 * below the smallest positive variance, so they stay the lowest values and form their own mode.
 */
export function logVariance(values: ArrayLike<number>): { logs: Float64Array; floor: number | null } {
  let minPos = Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > 0 && values[i] < minPos) minPos = values[i];
  const floor = Number.isFinite(minPos) ? minPos / 10 : null;
  const logs = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) logs[i] = Math.log10(values[i] > 0 ? values[i] : floor ?? 1);
  return { logs, floor };
}

function smooth(counts: readonly number[], sigma: number): Float64Array {
  const n = counts.length;
  const out = new Float64Array(n);
  if (sigma <= 0) {
    counts.forEach((c, i) => { out[i] = c; });
    return out;
  }
  const r = Math.ceil(3 * sigma);
  const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  for (let i = 0; i < n; i++) {
    let s = 0;
    let w = 0;
    for (let j = -r; j <= r; j++) {
      if (i + j < 0 || i + j >= n) continue; // renormalised at the ends, so edge modes keep their height
      s += k[j + r] * counts[i + j];
      w += k[j + r];
    }
    out[i] = s / w;
  }
  return out;
}

function localMaxima(s: Float64Array): number[] {
  const peaks: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const left = i === 0 ? -Infinity : s[i - 1];
    const right = i === s.length - 1 ? -Infinity : s[i + 1];
    if (s[i] > 0 && s[i] > left && s[i] >= right) peaks.push(i);
  }
  return peaks;
}

/** Lowest bin strictly between a and b; a run of equal minima gives its middle (in bins, may be fractional). */
function valleyBetween(s: Float64Array, a: number, b: number): { at: number; height: number } {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  let best = lo + 1;
  for (let i = lo + 1; i < hi; i++) if (s[i] < s[best]) best = i;
  let end = best;
  while (end + 1 < hi && s[end + 1] === s[best]) end++;
  return { at: (best + end) / 2, height: s[best] };
}

export interface ValleyResult {
  /** τ in log10 units. */
  readonly logThreshold: number;
  /** The two modes' centres in log10 units (ascending). */
  readonly modes: [number, number];
  readonly valleyHeight: number;
}

/** The valley between the two main modes of the log-variance histogram, or null when the sample is not bimodal. */
export function bimodalValley(logs: ArrayLike<number>, opts: ThresholdOptions = {}): ValleyResult | null {
  const bins = opts.bins ?? 64;
  const h = histogram(logs, bins);
  if (h.counts.length < 3) return null;
  const s = smooth(h.counts, opts.smoothSigma ?? 1.5);
  const peaks = localMaxima(s).sort((x, y) => s[y] - s[x]);
  if (peaks.length < 2) return null;
  const p1 = peaks[0];
  const w = h.edges[1] - h.edges[0];
  const centre = (bin: number) => h.edges[0] + (bin + 0.5) * w;
  for (const p2 of peaks.slice(1)) {
    const lower = Math.min(s[p1], s[p2]);
    if (lower < (opts.minPeakFraction ?? 0.02) * s[p1]) break; // the rest are smaller still
    if (Math.abs(p1 - p2) < 2) continue;
    const v = valleyBetween(s, p1, p2);
    if (v.height > (opts.maxValleyRatio ?? 0.6) * lower) continue; // a shoulder, not a second mode
    const modes = [centre(p1), centre(p2)].sort((x, y) => x - y) as [number, number];
    return { logThreshold: centre(v.at), modes, valleyHeight: v.height };
  }
  return null;
}

/** Otsu's threshold (maximal between-class variance) of a sample, over a `bins`-bin histogram; returns an edge. */
export function otsu(values: ArrayLike<number>, bins = 256): number {
  const h = histogram(values, bins);
  const n = values.length;
  const mids = h.counts.map((_, i) => (h.edges[i] + h.edges[i + 1]) / 2);
  const total = h.counts.reduce((a, c, i) => a + c * mids[i], 0);
  let w0 = 0;
  let s0 = 0;
  let best = -1;
  let at = h.edges[Math.floor(h.counts.length / 2)];
  for (let k = 0; k < h.counts.length - 1; k++) {
    w0 += h.counts[k];
    s0 += h.counts[k] * mids[k];
    const w1 = n - w0;
    if (w0 === 0 || w1 === 0) continue;
    const between = w0 * w1 * (s0 / w0 - (total - s0) / w1) ** 2;
    if (between > best) {
      best = between;
      at = h.edges[k + 1];
    }
  }
  return at;
}

/** τ from a fixed value or automatically from the pooled variances (every analysed layer and position). */
export function chooseThreshold(variances: ArrayLike<number>, spec: ThresholdSpec, opts: ThresholdOptions = {}): ThresholdChoice {
  if (spec !== 'auto') {
    if (!Number.isFinite(spec) || spec < 0) throw new KvlensUsageError(`threshold must be a non-negative number or "auto", got ${spec}`);
    return { value: spec, method: 'fixed', note: 'given by the user' };
  }
  if (variances.length === 0) throw new KvlensUsageError('cannot choose a threshold from no variances');
  const { logs, floor } = logVariance(variances);
  const zeros = floor === null ? variances.length : Array.prototype.filter.call(variances, (v: number) => !(v > 0)).length;
  const zeroNote = zeros ? `; ${zeros} exact zero(s) placed at log10 ${fmt(Math.log10(floor ?? 1))}` : '';
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of logs) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
  if (floor === null || !(hi > lo)) {
    // Nothing separates: every position has the same variance. A threshold at that value flags none (strict <).
    const v = floor === null ? 0 : variances[0]; // the common value itself (10 ** log10(v) may round above it)
    return { value: v, method: 'degenerate', note: `all ${variances.length} variances are equal (${fmt(v)}); no position is flagged` };
  }
  const valley = bimodalValley(logs, opts);
  if (valley) {
    const value = 10 ** valley.logThreshold;
    return {
      value, method: 'bimodal-valley',
      note: `lowest point of the Gaussian-smoothed (sigma ${opts.smoothSigma ?? 1.5} bins) ${opts.bins ?? 64}-bin histogram of log10(variance) ` +
        `between its modes at ${fmt(10 ** valley.modes[0])} and ${fmt(10 ** valley.modes[1])}, pooled over ${variances.length} (layer, position) values${zeroNote}`,
    };
  }
  const t = otsu(logs);
  return {
    value: 10 ** t, method: 'otsu-log',
    note: `log10(variance) histogram is not bimodal; Otsu's threshold on log10(variance) over ${variances.length} (layer, position) values${zeroNote}`,
  };
}

function fmt(x: number): string {
  return Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-2 && x !== 0) ? x.toExponential(3) : x.toPrecision(4);
}
