// Where a forward pass spends its time: an opt-in recorder of labelled spans (every ORT session run, plus what the
// model code marks itself, e.g. tap copies). Each span carries wall time, CPU time split into user and system, and
// page faults, all from process.resourceUsage() deltas, so the figures that do not depend on machine load (faults,
// system time, CPU seconds) sit beside the wall-clock ones. Off by default: one null check per span.
//
//   const rec = startRecording();
//   await model.forward(...);
//   const spans = rec.stop();           // [{ label: 'session:qwen2.layer0', wallS, userS, sysS, minorFaults, ... }]

import { readFileSync } from 'node:fs';

export interface Span {
  readonly label: string;
  readonly wallS: number;
  readonly userS: number;
  readonly sysS: number;
  readonly minorFaults: number;
  readonly majorFaults: number;
  /** Resident set (VmRSS) when the span ended, in bytes (0 where /proc is missing); recorded spans only. */
  readonly rssBytes?: number;
}

/** VmRSS of this process in bytes (0 when /proc/self/status cannot be read). */
export function residentBytes(): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Wall, CPU and fault counters now (µs / counts as Node reports them). */
export interface Counters { readonly t: number; readonly user: number; readonly sys: number; readonly minor: number; readonly major: number }

export function counters(): Counters {
  const r = process.resourceUsage();
  return { t: performance.now(), user: r.userCPUTime, sys: r.systemCPUTime, minor: r.minorPageFault, major: r.majorPageFault };
}

/** The span between two counter readings. */
export function spanBetween(label: string, a: Counters, b: Counters): Span {
  return {
    label, wallS: (b.t - a.t) / 1000, userS: (b.user - a.user) / 1e6, sysS: (b.sys - a.sys) / 1e6,
    minorFaults: b.minor - a.minor, majorFaults: b.major - a.major,
  };
}

export interface Recording {
  readonly spans: Span[];
  stop(): Span[];
}

let active: Recording | null = null;

/** Start recording spans (one recording at a time; starting a new one ends the previous). */
export function startRecording(): Recording {
  const rec: Recording = {
    spans: [],
    stop() {
      if (active === rec) active = null;
      return rec.spans;
    },
  };
  active = rec;
  return rec;
}

/** Run `f` and record it as a span when a recording is active (spans may nest; each is reported as measured). */
export async function measured<T>(label: string, f: () => Promise<T> | T): Promise<T> {
  if (!active) return f();
  const rec = active;
  const a = counters();
  try {
    return await f();
  } finally {
    rec.spans.push({ ...spanBetween(label, a, counters()), rssBytes: residentBytes() });
  }
}

/** Synchronous variant of `measured`. */
export function measuredSync<T>(label: string, f: () => T): T {
  if (!active) return f();
  const rec = active;
  const a = counters();
  try {
    return f();
  } finally {
    rec.spans.push({ ...spanBetween(label, a, counters()), rssBytes: residentBytes() });
  }
}

/** Sum spans by label (in first-seen order). */
export function sumSpans(spans: readonly Span[]): Span[] {
  const by = new Map<string, { label: string; wallS: number; userS: number; sysS: number; minorFaults: number; majorFaults: number }>();
  for (const s of spans) {
    const t = by.get(s.label) ?? { label: s.label, wallS: 0, userS: 0, sysS: 0, minorFaults: 0, majorFaults: 0 };
    t.wallS += s.wallS; t.userS += s.userS; t.sysS += s.sysS; t.minorFaults += s.minorFaults; t.majorFaults += s.majorFaults;
    by.set(s.label, t);
  }
  return [...by.values()];
}
