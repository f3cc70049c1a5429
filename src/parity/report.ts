// Rendering parity rows: a fixed-width table for people, JSON for machines.

import type { ParityRow, RowStatus } from './compare.js';

export interface ParitySummary {
  readonly counts: Record<RowStatus, number>;
  readonly exitCode: number;
}

/** Non-zero when any tensor failed its tolerance or could not be computed. */
export function summarize(rows: readonly ParityRow[]): ParitySummary {
  const counts: Record<RowStatus, number> = { pass: 0, FAIL: 0, 'from-fixture': 0, input: 0, skipped: 0, error: 0 };
  for (const r of rows) counts[r.status]++;
  return { counts, exitCode: counts.FAIL || counts.error ? 1 : 0 };
}

function fmtErr(x: number | undefined): string {
  if (x === undefined) return '-';
  if (x === 0) return '0';
  return x.toExponential(2);
}

export function formatTable(rows: readonly ParityRow[]): string {
  const head = ['run', 'tensor', 'shape', 'max abs err', 'tolerance', 'status'];
  const body = rows.map((r) => [r.run, r.name, `[${r.shape.join(',')}]`, fmtErr(r.maxAbs), r.tolerance ?? '-', r.status + (r.note ? `  (${r.note})` : '')]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (i === 5 ? 0 : b[i].length))));
  const line = (cols: string[]) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

export function formatSummary(s: ParitySummary): string {
  const c = s.counts;
  return `${c.pass} passed, ${c.FAIL} failed, ${c.error} not computable, ${c['from-fixture']} read from the fixture, ${c.input} run inputs, ${c.skipped} skipped`;
}
