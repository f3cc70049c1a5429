// Where one prefill's time goes: every ORT session run and every span the model code marks (src/runtime/stats.ts),
// grouped into vision tower + projector, each LM layer, LM head, tap copies and the rest (embedding, packing, masks,
// JS glue), each with wall time, system time and page faults. Page faults and system time do not depend on how busy
// the machine is, so a regression in buffer handling shows here even when wall-clock figures are noisy.

import { sumSpans, type Span } from '../src/runtime/stats.js';
import type { BenchRow } from './common.js';

export interface BreakdownRow {
  readonly part: string; readonly wallS: number; readonly userS: number; readonly sysS: number; readonly minorFaults: number;
  /** Largest VmRSS seen at the end of one of the part's spans (bytes; 0 when unknown). */
  readonly rssMaxBytes: number;
}

/** Group raw spans: `total` is the whole forward's span; parts are disjoint, 'other' is what no part covers. */
export function groupSpans(spans: readonly Span[], total: Span): BreakdownRow[] {
  const parts = new Map<string, BreakdownRow>();
  const add = (part: string, s: Pick<Span, 'wallS' | 'userS' | 'sysS' | 'minorFaults'>, rss = 0) => {
    const p = parts.get(part) ?? { part, wallS: 0, userS: 0, sysS: 0, minorFaults: 0, rssMaxBytes: 0 };
    parts.set(part, {
      part, wallS: p.wallS + s.wallS, userS: p.userS + s.userS, sysS: p.sysS + s.sysS, minorFaults: p.minorFaults + s.minorFaults,
      rssMaxBytes: Math.max(p.rssMaxBytes, rss),
    });
  };
  const rssMax = new Map<string, number>();
  for (const s of spans) rssMax.set(s.label, Math.max(rssMax.get(s.label) ?? 0, s.rssBytes ?? 0));
  for (const s of sumSpans(spans)) add(partOf(s.label), s, rssMax.get(s.label));
  const covered = [...parts.values()].reduce((a, p) => ({ wallS: a.wallS + p.wallS, userS: a.userS + p.userS, sysS: a.sysS + p.sysS, minorFaults: a.minorFaults + p.minorFaults }), { wallS: 0, userS: 0, sysS: 0, minorFaults: 0 });
  add('other (embedding, anyres packing, masks, JS glue)', {
    wallS: Math.max(0, total.wallS - covered.wallS), userS: Math.max(0, total.userS - covered.userS),
    sysS: Math.max(0, total.sysS - covered.sysS), minorFaults: Math.max(0, total.minorFaults - covered.minorFaults),
  });
  return [...parts.values()];
}

/** Span label -> breakdown part. */
function partOf(label: string): string {
  const layer = /^session:.*\.layers?(\d+)(-\d+)?/.exec(label);
  if (layer) return `LM layer ${layer[1]}${layer[2] ?? ''}`;
  if (/^session:.*vision/.test(label)) return 'vision tower + projector';
  if (/^session:.*\.head$/.test(label)) return 'LM head (final norm + logits)';
  if (/^session:.*attn_probs/.test(label)) return 'attention probabilities (tap)';
  if (label === 'lm.tap-copies') return 'LM tap copies (K/V past the cache, chunk merge)';
  if (label.startsWith('session:')) return label.slice('session:'.length);
  return label;
}

/** Rows for printTable: one per part, with the share of the forward's wall time. */
export function breakdownRows(rows: readonly BreakdownRow[], total: Span): BenchRow[] {
  const out: BenchRow[] = [];
  for (const r of rows) {
    out.push({
      metric: r.part,
      value: `${r.wallS.toFixed(3)} s ${pct(r.wallS, total.wallS)}  sys ${r.sysS.toFixed(3)} s  faults ${r.minorFaults.toLocaleString('en-US').padStart(9)}` +
        (r.rssMaxBytes ? `  RSS ${(r.rssMaxBytes / 2 ** 30).toFixed(2)} GiB` : ''),
    });
  }
  out.push({
    metric: 'whole forward',
    value: `${total.wallS.toFixed(3)} s (cpu ${(total.userS + total.sysS).toFixed(2)} s)  sys ${total.sysS.toFixed(3)} s  faults ${total.minorFaults.toLocaleString('en-US')}`,
  });
  return out;
}

const pct = (a: number, b: number) => `(${((100 * a) / Math.max(b, 1e-9)).toFixed(1).padStart(4)}%)`;
