// Result rows shared by every probe, and atomic CSV / JSON writers (temp file + rename, so a crash
// never leaves a half-written results file).

import { writeFileAtomicSync } from '../util/atomic-write.js';

/** One measured number. */
export interface ResultRow {
  readonly task: string;
  readonly model: string;
  /** Hook name (src/taps/names.ts vocabulary), e.g. "lm.14.attn.v", "projector.out", "siglip.25.out". */
  readonly tap: string;
  /** Layer index, or null for layer-less taps (projector, embeddings). */
  readonly layer: number | null;
  readonly metric: string;
  readonly value: number;
  /** Number of units the value averages over (episodes, images, keypoints, objects). */
  readonly n: number;
  readonly seed: number;
}

/** A probe's metrics before they are tagged with model / tap / layer. */
export interface MetricValue {
  readonly metric: string;
  readonly value: number;
  readonly n: number;
}

/** Every probe returns its metrics together with the protocol choices that produced them. */
export interface ProbeResult<P extends object = Record<string, unknown>> {
  readonly task: string;
  readonly metrics: MetricValue[];
  readonly protocol: P;
}

export interface RowContext {
  readonly model: string;
  readonly tap: string;
  readonly layer: number | null;
  readonly seed: number;
}

export function toRows(result: ProbeResult<object>, ctx: RowContext): ResultRow[] {
  return result.metrics.map((m) => ({ task: result.task, model: ctx.model, tap: ctx.tap, layer: ctx.layer, metric: m.metric, value: m.value, n: m.n, seed: ctx.seed }));
}

const COLUMNS: (keyof ResultRow)[] = ['task', 'model', 'tap', 'layer', 'metric', 'value', 'n', 'seed'];

function csvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'number' ? (Number.isNaN(v) ? 'NaN' : String(v)) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function rowsToCsv(rows: readonly ResultRow[]): string {
  const lines = [COLUMNS.join(',')];
  for (const r of rows) lines.push(COLUMNS.map((c) => csvField(r[c])).join(','));
  return lines.join('\n') + '\n';
}

export function writeRowsCsv(path: string, rows: readonly ResultRow[]): void {
  writeFileAtomicSync(path, rowsToCsv(rows));
}

/** JSON document: the rows plus the protocol objects that produced them (NaN written as null). */
export function writeRowsJson(path: string, rows: readonly ResultRow[], protocol: Record<string, unknown> = {}): void {
  writeFileAtomicSync(path, JSON.stringify({ rows, protocol }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
}
