// What every benchmark shares: the row type, the table printer and the peak-RSS reading (one home, so the benchmark
// modules do not import each other).
import { readFileSync } from 'node:fs';

export interface BenchRow { readonly metric: string; readonly value: string; readonly target?: string; readonly ok?: boolean }

/** Peak resident set size of this process (VmHWM on Linux: mmapped weight pages included). */
export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return process.resourceUsage().maxRSS * 1024;
}

export function printTable(title: string, rows: readonly BenchRow[]): void {
  const w = Math.max(...rows.map((r) => r.metric.length));
  const v = Math.max(...rows.map((r) => r.value.length));
  console.log(`\n${title}`);
  for (const r of rows) {
    const tgt = r.target ? `  target ${r.target} ${r.ok ? 'OK' : 'MISSED'}` : '';
    console.log(`  ${r.metric.padEnd(w)}  ${r.value.padStart(v)}${tgt}`);
  }
}
