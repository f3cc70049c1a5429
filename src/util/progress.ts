// A progress reporter for long loops: on a TTY one self-overwriting line with a bar, count, rate and ETA; elsewhere
// (logs, CI, SLURM output files) a plain line at most every `intervalMs` — and at least that often while the loop runs,
// even when one item takes longer (a heartbeat timer) — plus a final summary, so logs stay readable and alive.
//
//   const p = new Progress({ total: n, label: 'extract' });
//   for (...) { ...; p.tick(); }
//   p.done();
//
// Rates count only the work done in this process: items found already done (a resumed run) are ticked with
// `{ cached: true }` (or given as `initial`) and advance the count without inflating the rate or shrinking the ETA.
//
// Library code does not print: it reports ProgressEvents (step, done, total) through a callback, and the CLI turns
// them into Progress lines with progressPrinter().

import { AsyncLocalStorage } from 'node:async_hooks';

export interface ProgressOptions {
  readonly total: number;
  readonly label?: string;
  /** Items already done before this process started (a resumed run): counted, but not in the rate. */
  readonly initial?: number;
  /** Default process.stderr. */
  readonly stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Override the stream's TTY detection. */
  readonly tty?: boolean;
  /** Time between plain (non-TTY) lines; default 5 s. TTY redraws are throttled to 10 per second. */
  readonly intervalMs?: number;
  /** Clock (tests). */
  readonly now?: () => number;
  /** Plain mode prints a line every intervalMs even without ticks (default true; tests with a fake clock turn it off). */
  readonly heartbeat?: boolean;
}

export const DEFAULT_PROGRESS_INTERVAL_MS = 5000;

export class Progress {
  private done_ = 0;
  private skipped = 0;
  /** Items that needed no work (already stored): excluded from the rate. */
  private cached = 0;
  /** When the first item of real work started being timed: the start, or the last cached tick before any work. */
  private workStart: number;
  private worked = 0;
  private lastDraw = -Infinity;
  private readonly tty: boolean;
  private readonly stream: NonNullable<ProgressOptions['stream']>;
  private readonly now: () => number;
  private readonly started: number;
  private finished = false;
  private drawnAt = -1;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.now = opts.now ?? (() => Date.now());
    this.started = this.workStart = this.now();
    this.done_ = this.cached = Math.max(0, opts.initial ?? 0);
    if (!this.tty && opts.heartbeat !== false) {
      const every = this.interval();
      if (every > 0) {
        this.timer = setInterval(() => { if (this.now() - this.lastDraw >= every) this.draw(this.now()); }, every);
        this.timer.unref();
      }
    }
  }

  get total(): number {
    return this.opts.total;
  }

  /** Count `n` items as processed (`skipped`: they failed and were skipped; `cached`: already done, no work). */
  tick(n = 1, opts: { skipped?: boolean; cached?: boolean } = {}): void {
    const t = this.now();
    this.done_ += n;
    if (opts.skipped) this.skipped += n;
    if (opts.cached) {
      this.cached += n;
      if (this.worked === 0) this.workStart = t; // the clock for the rate starts with the first real item
    } else this.worked += n;
    const gap = this.tty ? 100 : this.interval();
    if (t - this.lastDraw >= gap || this.done_ >= this.opts.total) this.draw(t);
  }

  /** Set the absolute count (for callers that report "done of total" rather than increments). */
  update(done: number, opts: { skipped?: number; cached?: number } = {}): void {
    const cachedNow = opts.cached ?? this.cached;
    const newCached = Math.max(0, cachedNow - this.cached);
    const newWork = Math.max(0, done - this.done_ - newCached);
    if (opts.skipped !== undefined) this.skipped = opts.skipped;
    if (newCached) this.tick(newCached, { cached: true });
    if (newWork) this.tick(newWork);
  }

  /** Print a message without garbling the bar. */
  log(message: string): void {
    if (this.tty) this.stream.write('\r\x1b[K');
    this.stream.write(`${message}\n`);
    if (this.tty && !this.finished) this.draw(this.now());
  }

  /** Final line (always printed). */
  done(): void {
    if (this.finished) return;
    if (this.timer) clearInterval(this.timer);
    if (this.drawnAt !== this.done_ || this.tty) this.draw(this.now(), true);
    this.finished = true;
  }

  /** The status text: "label 12/100 (12.0%) 3.1/s ETA 28s, 1 skipped, 40 already done". */
  line(t = this.now()): string {
    const { total } = this.opts;
    const workSeconds = Math.max(t - this.workStart, 1) / 1000;
    const rate = this.worked / workSeconds;
    const pct = total > 0 ? (100 * this.done_) / total : 100;
    const finished = this.done_ >= total;
    const eta = finished ? `done in ${formatDuration(Math.max(t - this.started, 1) / 1000)}`
      : rate > 0 ? `ETA ${formatDuration((total - this.done_) / rate)}` : 'ETA ?';
    const label = this.opts.label ? `${this.opts.label} ` : '';
    const extra = [this.skipped ? `${this.skipped} skipped` : '', this.cached ? `${this.cached} already done` : ''].filter(Boolean);
    const rateText = this.worked === 0 && this.cached > 0 ? '-' : formatRate(rate);
    return `${label}${this.done_}/${total} (${pct.toFixed(1)}%) ${rateText} ${eta}${extra.length ? `, ${extra.join(', ')}` : ''}`;
  }

  private interval(): number {
    return this.opts.intervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
  }

  private draw(t: number, final = false): void {
    this.lastDraw = t;
    this.drawnAt = this.done_;
    const text = this.line(t);
    if (!this.tty) {
      this.stream.write(`${text}\n`);
      return;
    }
    const width = Math.max(10, Math.min(30, (this.stream.columns ?? 80) - text.length - 4));
    const frac = this.opts.total > 0 ? Math.min(1, this.done_ / this.opts.total) : 1;
    const fill = Math.round(frac * width);
    this.stream.write(`\r\x1b[K[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${text}${final ? '\n' : ''}`);
  }
}

/** A step of a long computation reports where it is: `done` of `total` units (`cached`: of them already done before). */
export interface ProgressEvent {
  /** Short label, e.g. "extract values", "probe fewshot-seg", "blocking POPE". Each distinct step gets its own line. */
  readonly step: string;
  readonly done: number;
  readonly total: number;
  readonly unit?: string;
  readonly skipped?: number;
  readonly cached?: number;
}

export type ProgressCallback = (e: ProgressEvent) => void;

export interface ProgressPrinter {
  readonly onProgress: ProgressCallback;
  /** A free-form message line (between bars on a TTY). */
  readonly say: (message: string) => void;
  /** Finish the open step's line. */
  readonly finish: () => void;
}

/**
 * Turn ProgressEvents into Progress lines on stderr: one Progress per step, the previous one finished when a new step
 * starts. `quiet` prints nothing.
 */
export function progressPrinter(opts: { quiet?: boolean; intervalMs?: number; stream?: ProgressOptions['stream']; tty?: boolean; prefix?: string } = {}): ProgressPrinter {
  const stream = opts.stream ?? process.stderr;
  let current: { step: string; total: number; p: Progress } | undefined;
  const finish = () => { current?.p.done(); current = undefined; };
  return {
    onProgress: (e) => {
      if (opts.quiet) return;
      if (!current || current.step !== e.step || current.total !== e.total) {
        finish();
        const label = `${opts.prefix ?? ''}${e.step}${e.unit ? ` (${e.unit})` : ''}`;
        current = { step: e.step, total: e.total, p: new Progress({ total: e.total, label, stream, tty: opts.tty, intervalMs: opts.intervalMs }) };
      }
      current.p.update(e.done, { skipped: e.skipped, cached: e.cached });
      if (e.done >= e.total) finish();
    },
    say: (message) => {
      if (opts.quiet) return;
      if (current) current.p.log(`${opts.prefix ?? ''}${message}`);
      else stream.write(`${opts.prefix ?? ''}${message}\n`);
    },
    finish,
  };
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatRate(perSecond: number): string {
  if (perSecond >= 1 || perSecond === 0) return `${perSecond.toFixed(2)}/s`;
  return `${(1 / perSecond).toFixed(1)}s/it`;
}

// ---- the progress channel ----
// Long steps deep inside the library (extraction inside an experiment, probe jobs, benchmark questions) report
// through the sink of the command that runs them, without every function in between taking a callback: the CLI runs
// its work inside withProgress(sink, ...), and reportProgress() finds that sink (AsyncLocalStorage, so concurrent
// callers in one process keep their own). Outside withProgress it does nothing.
const channel = new AsyncLocalStorage<ProgressCallback>();

export function withProgress<T>(sink: ProgressCallback | undefined, fn: () => Promise<T>): Promise<T> {
  return sink ? channel.run(sink, fn) : fn();
}

export function reportProgress(e: ProgressEvent): void {
  channel.getStore()?.(e);
}
