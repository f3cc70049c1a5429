// Turns probe rows into what the report shows: per (task, metric) layer curves per (model, tap family) averaged over
// seeds, their peaks, and the encoder comparison (projector output vs SigLIP vs best LM layer).
import type { ProbeRow } from '../results/schema.js';
import { tapFamily } from '../taps/names.js';
import { isBaselineLayerTap, isBaselineTap, isLanguageModelTap } from '../taps/table.js';

/** lm.14.attn.v -> lm.{L}.attn.v; names without a layer are unchanged (the taps module's one definition). */
export { tapFamily };

/** Metrics where smaller is better (errors, losses); everything else (mIoU, PCK, J&F, accuracy) peaks at its maximum. */
export function lowerIsBetter(metric: string): boolean {
  return /(loss|error|err\b|distance|epe)/i.test(metric);
}

export interface CurvePoint { layer: number; mean: number; std: number; seeds: number; n: number }
export interface Curve { model: string; tap: string; points: CurvePoint[] }
export interface CurveGroup { task: string; metric: string; curves: Curve[] }

function meanStd(vs: number[]): { mean: number; std: number } {
  const mean = vs.reduce((a, b) => a + b, 0) / vs.length;
  const v = vs.length > 1 ? vs.reduce((a, b) => a + (b - mean) ** 2, 0) / (vs.length - 1) : 0;
  return { mean, std: Math.sqrt(v) };
}

/** Keep insertion order (the order the runner wrote) so charts come out in the experiment's own order. */
function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k);
    if (list) list.push(x);
    else m.set(k, [x]);
  }
  return m;
}

/** Layer-wise curves: rows with a layer, grouped by (task, metric), then (model, tap family); seeds averaged per layer. */
export function layerCurves(rows: readonly ProbeRow[]): CurveGroup[] {
  const layered = rows.filter((r) => r.layer !== null);
  const groups: CurveGroup[] = [];
  for (const [, gRows] of groupBy(layered, (r) => `${r.task}\u0000${r.metric}`)) {
    const curves: Curve[] = [];
    for (const [, cRows] of groupBy(gRows, (r) => `${r.model}\u0000${tapFamily(r.tap)}`)) {
      const byLayer = groupBy(cRows, (r) => String(r.layer));
      const points = [...byLayer.values()].map((lr) => {
        const { mean, std } = meanStd(lr.map((r) => r.value));
        return { layer: lr[0].layer as number, mean, std, seeds: lr.length, n: lr.reduce((a, r) => a + r.n, 0) / lr.length };
      }).sort((a, b) => a.layer - b.layer);
      curves.push({ model: cRows[0].model, tap: tapFamily(cRows[0].tap), points });
    }
    groups.push({ task: gRows[0].task, metric: gRows[0].metric, curves });
  }
  return groups;
}

export function curvePeak(c: Curve, metric: string): CurvePoint {
  const lower = lowerIsBetter(metric);
  return c.points.reduce((best, p) => (lower ? p.mean < best.mean : p.mean > best.mean) ? p : best, c.points[0]);
}

/**
 * Taps that stand for the projector output, in preference order: projector.out, else image.packed — the projector
 * output as the packed image tokens the LM receives (what extraction stores, e.g. the demo run). Neither has a layer.
 */
export const PROJECTOR_TAPS = ['projector.out', 'image.packed'] as const;

/** The projector reference of one (model, task, metric) group: the seed mean of the first PROJECTOR_TAPS tap present. */
export function projectorReference(rows: readonly ProbeRow[]): { tap: string; value: number } | undefined {
  for (const tap of PROJECTOR_TAPS) {
    const sel = rows.filter((r) => r.tap === tap);
    if (sel.length) return { tap, value: meanStd(sel.map((r) => r.value)).mean };
  }
  return undefined;
}

export interface EncoderRow {
  model: string;
  task: string;
  metric: string;
  projector?: { tap: string; value: number };
  siglip?: { tap: string; value: number };
  bestLm?: { tap: string; layer: number; value: number };
}

/**
 * Encoder comparison per (model, task, metric): the projector reference (projector.out or image.packed), the un-finetuned SigLIP baseline (siglip.*; the last
 * SigLIP row wins when several exist — runners write the post-norm output), and the best LM layer over all lm.* taps.
 */
export function encoderComparison(rows: readonly ProbeRow[]): EncoderRow[] {
  const out: EncoderRow[] = [];
  for (const [, gRows] of groupBy(rows, (r) => `${r.model}\u0000${r.task}\u0000${r.metric}`)) {
    const { model, task, metric } = gRows[0];
    const avg = (sel: ProbeRow[]) => (sel.length ? meanStd(sel.map((r) => r.value)).mean : undefined);
    const e: EncoderRow = { model, task, metric, projector: projectorReference(gRows) };
    // The encoder baseline (baseline.*, or siglip.* in older runs): the projector-input row when present, else the last.
    const sig = [...groupBy(gRows.filter((r) => isBaselineTap(r.tap)), (r) => r.tap).entries()];
    if (sig.length) {
      const [tap, sRows] = sig.find(([t]) => isBaselineLayerTap(t)) ?? sig[sig.length - 1];
      e.siglip = { tap, value: avg(sRows) as number };
    }
    const lmCurves = layerCurves(gRows.filter((r) => isLanguageModelTap(r.tap))).flatMap((g) => g.curves);
    for (const c of lmCurves) {
      const p = curvePeak(c, metric);
      const better = !e.bestLm || (lowerIsBetter(metric) ? p.mean < e.bestLm.value : p.mean > e.bestLm.value);
      if (better) e.bestLm = { tap: c.tap, layer: p.layer, value: p.mean };
    }
    // Only tasks with an encoder-side reference belong in the comparison.
    if (e.projector !== undefined || e.siglip !== undefined) out.push(e);
  }
  return out;
}

/**
 * A per-class / per-category metric: `IoU.class17` (Pascal-5i, 1-based VOC class = the mask value), `IoU.<name>`, or
 * `PCK@0.1.image.<category>` (SPair). Returns the headline metric it breaks down and the class's name, or undefined
 * for headline metrics (mIoU, FB-IoU, PCK@0.1.point, ...).
 */
export function metricBreakdown(task: string, metric: string, classNames: Record<string, readonly string[]> = {}): { base: string; category: string } | undefined {
  const iou = /^IoU\.(.+)$/.exec(metric);
  if (iou) {
    const id = /^class(\d+)$/.exec(iou[1]);
    const names = classNames[task];
    const name = id && names ? names[Number(id[1]) - 1] : undefined;
    return { base: 'IoU per class', category: name ?? (id ? `class ${id[1]}` : iou[1]) };
  }
  const pck = /^(PCK@[\d.]+\.image)\.(.+)$/.exec(metric);
  if (pck) return { base: `${pck[1]} per category`, category: pck[2] };
  return undefined;
}

/** Where a probe task's curves and references were read from: the store views recorded in probes.json's protocol. */
export interface TaskViews { lm?: string; reference?: string }

/**
 * probes.json's protocol is keyed by probe task (fewshot-seg, correspondence, ...) while rows carry the benchmark task
 * (pascal5i-fewshot, spair-correspondence): an entry belongs to a row task when the names agree or the row task starts
 * with the entry's dataset.
 */
export function taskViews(protocol: Record<string, unknown> | undefined, rowTask: string): TaskViews {
  if (!protocol) return {};
  for (const [key, v] of Object.entries(protocol)) {
    const entry = v as { lm?: { flow?: { view?: unknown; dataset?: unknown } }; reference?: { flow?: { view?: unknown } } } | undefined;
    const dataset = entry?.lm?.flow?.dataset;
    if (key === rowTask || (typeof dataset === 'string' && rowTask.startsWith(`${dataset}-`))) {
      const str = (x: unknown) => (typeof x === 'string' ? x : undefined);
      return { lm: str(entry?.lm?.flow?.view), reference: str(entry?.reference?.flow?.view) };
    }
  }
  return {};
}

/** "base" from "each tap's first view (base)"; the plain view name otherwise. */
export function viewName(v: string | undefined): string | undefined {
  if (!v) return undefined;
  return /\(([^)]+)\)\s*$/.exec(v)?.[1] ?? v;
}
