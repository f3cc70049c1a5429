// A progress reporter for long loops: on a TTY one self-overwriting line with a bar, count, rate and ETA; elsewhere
// (logs, CI, SLURM output files) a plain line at most every `intervalMs` and a final summary, so logs stay readable.
//
//   const p = new Progress({ total: n, label: 'extract' });
//   for (...) { ...; p.tick(); }
//   p.done();

export interface ProgressOptions {
  readonly total: number;
  readonly label?: string;
  /** Default process.stderr. */
  readonly stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Override the stream's TTY detection. */
  readonly tty?: boolean;
  /** Minimum time between plain (non-TTY) lines; default 10 s. TTY redraws are throttled to 10 per second. */
  readonly intervalMs?: number;
  /** Clock (tests). */
  readonly now?: () => number;
}

export class Progress {
  private done_ = 0;
  private skipped = 0;
  private readonly started: number;
  private lastDraw = -Infinity;
  private readonly tty: boolean;
  private readonly stream: NonNullable<ProgressOptions['stream']>;
  private readonly now: () => number;
  private finished = false;
  private drawnAt = -1;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.now = opts.now ?? (() => Date.now());
    this.started = this.now();
  }

  /** Count `n` items as processed (`skipped` of them failed and were skipped). */
  tick(n = 1, opts: { skipped?: boolean } = {}): void {
    this.done_ += n;
    if (opts.skipped) this.skipped += n;
    const t = this.now();
    const gap = this.tty ? 100 : this.opts.intervalMs ?? 10_000;
    if (t - this.lastDraw >= gap || this.done_ >= this.opts.total) this.draw(t);
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
    if (this.drawnAt !== this.done_ || this.tty) this.draw(this.now(), true);
    this.finished = true;
  }

  /** The status text: "label 12/100 (12.0%) 3.1/s ETA 28s, 1 skipped". */
  line(t = this.now()): string {
    const { total } = this.opts;
    const elapsed = Math.max(t - this.started, 1) / 1000;
    const rate = this.done_ / elapsed;
    const pct = total > 0 ? (100 * this.done_) / total : 100;
    const eta = rate > 0 && this.done_ < total ? formatDuration((total - this.done_) / rate) : this.done_ >= total ? `done in ${formatDuration(elapsed)}` : '?';
    const label = this.opts.label ? `${this.opts.label} ` : '';
    const skipped = this.skipped ? `, ${this.skipped} skipped` : '';
    return `${label}${this.done_}/${total} (${pct.toFixed(1)}%) ${formatRate(rate)} ${eta.startsWith('done') ? eta : `ETA ${eta}`}${skipped}`;
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
