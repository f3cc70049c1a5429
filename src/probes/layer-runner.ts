// Layer sweeps: run one probe per layer (or any list of taps) and collect tagged result rows, in
// parallel across cores. Each layer's job must derive all randomness from its args (seed), so rows are
// identical for any thread count; rows are returned in layer order.

import { runJobs, type ProbeJob } from './parallel.js';
import { toRows, type ProbeResult, type ResultRow } from './results.js';

export interface LayerSweep {
  readonly model: string;
  readonly seed: number;
  /** One entry per tap to probe, e.g. { tap: 'lm.14.attn.v', layer: 14 }. */
  readonly taps: readonly { readonly tap: string; readonly layer: number | null }[];
  /** Builds the job that probes one tap; its function must return a ProbeResult. */
  readonly job: (tap: string, layer: number | null) => ProbeJob;
}

export interface LayerSweepResult {
  readonly rows: ResultRow[];
  /** Protocol object per tap (identical across taps for a well-formed sweep). */
  readonly protocols: Record<string, object>;
}

export async function runLayerSweep(sweep: LayerSweep, threads?: number): Promise<LayerSweepResult> {
  const jobs = sweep.taps.map((t) => sweep.job(t.tap, t.layer));
  const results = await runJobs<ProbeResult<object>>(jobs, threads);
  const rows: ResultRow[] = [];
  const protocols: Record<string, object> = {};
  results.forEach((r, i) => {
    const t = sweep.taps[i];
    rows.push(...toRows(r, { model: sweep.model, tap: t.tap, layer: t.layer, seed: sweep.seed }));
    protocols[t.tap] = r.protocol;
  });
  return { rows, protocols };
}

/** The best layer per (task, metric): argmax of value over the rows (ties: lower layer). */
export function bestLayers(rows: readonly ResultRow[]): { task: string; metric: string; tap: string; layer: number | null; value: number }[] {
  const best = new Map<string, ResultRow>();
  for (const r of rows) {
    if (Number.isNaN(r.value)) continue;
    const key = `${r.task}\u0000${r.metric}`;
    const cur = best.get(key);
    if (!cur || r.value > cur.value) best.set(key, r);
  }
  return [...best.values()].map((r) => ({ task: r.task, metric: r.metric, tap: r.tap, layer: r.layer, value: r.value }));
}
