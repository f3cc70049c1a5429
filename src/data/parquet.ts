// Streaming parquet rows (hyparquet) in small batches, so a 150 MB BLINK file is never held whole in memory,
// plus the Hugging Face `Image` struct {bytes, path} -> ImageSource conversion (null/absent -> null).
import { open } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { KvlensInputError } from '../util/errors.js';
import { limit, limitError } from '../util/limits.js';
import { requireFile } from './io.js';
import type { ImageSource } from './types.js';

// hyparquet runs in a worker thread (parquet-worker.ts): a mutated 27 KB file made it spin for over a minute on the
// main thread. Each request is given PARSER_MS plus 1 ms per 20 KB of file, counted from when the worker has loaded; past that, or when the worker dies (out of
// memory), the worker is terminated and the file named in a KvlensInputError.

export interface ParquetHandle {
  path: string;
  numRows: number;
  columns: string[];
  /** Ends the reader's worker (parquetRows does this when it finishes). */
  close(): void;
}

class GuardedParquet {
  private readonly worker: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { ok: (v: unknown) => void; fail: (e: Error) => void; timer?: NodeJS.Timeout; what: string }>();
  private dead: Error | null = null;
  /** The worker has loaded hyparquet (a reused idle worker has); budgets start only then. */
  private ready: boolean;

  constructor(readonly path: string, private readonly budgetMs: number) {
    this.ready = idleWorker !== null;
    this.worker = idleWorker ?? new Worker(new URL('./parquet-worker.js', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: 4096 } });
    idleWorker = null;
    this.worker.removeAllListeners();
    this.worker.unref();
    this.worker.on('message', (m: { id: number; ok: boolean; value?: unknown; message?: string; ready?: true }) => {
      if (m.ready) {
        this.ready = true;
        for (const p of this.pending.values()) this.startBudget(p);
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      clearTimeout(p.timer);
      if (m.ok) p.ok(m.value); else p.fail(new KvlensInputError(`not a readable parquet file (${m.message})`, path));
    });
    const die = (why: string) => this.failAll(new KvlensInputError(`not a readable parquet file (the reader ${why})`, path));
    this.worker.on('error', (e) => die(`failed: ${e.message}`));
    this.worker.on('exit', () => die('stopped, out of memory?'));
  }

  request<T>(msg: Record<string, unknown>, what: string): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((ok, fail) => {
      const p = { ok: ok as (v: unknown) => void, fail, what };
      this.pending.set(id, p);
      this.worker.ref(); // keeps the process alive while the worker starts (no budget timer runs yet)
      if (this.ready) this.startBudget(p);
      this.worker.postMessage({ id, ...msg });
    });
  }

  private startBudget(p: { timer?: NodeJS.Timeout; what: string }): void {
    p.timer ??= setTimeout(() => {
      this.failAll(new KvlensInputError(`${p.what} was stopped after ${this.budgetMs} ms (set KVLENS_LIMIT_PARSER_MS to allow longer)`, this.path));
    }, this.budgetMs);
  }

  private failAll(e: Error): void {
    if (!this.dead) this.dead = e;
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.fail(e); }
    this.pending.clear();
    void this.worker.terminate();
  }

  /** A healthy, idle worker is kept for the next file (starting one costs more than most small files take). */
  close(): void {
    if (!this.dead && this.pending.size === 0 && !idleWorker) {
      this.dead = new KvlensInputError('parquet reader closed', this.path);
      this.worker.removeAllListeners();
      this.worker.on('error', () => { idleWorker = null; });
      this.worker.on('exit', () => { idleWorker = null; });
      idleWorker = this.worker;
      return;
    }
    this.failAll(new KvlensInputError('parquet reader closed', this.path));
  }
}

let idleWorker: Worker | null = null;

const readers = new WeakMap<ParquetHandle, GuardedParquet>();

/** Checks the footer (length and magic) against the file before hyparquet sees it. */
async function checkFooter(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size < 12) throw new KvlensInputError(`not a parquet file (${size} bytes; a parquet file has at least 12)`, path);
    const tail = Buffer.alloc(8);
    await fh.read(tail, 0, 8, size - 8);
    if (tail.toString('latin1', 4) !== 'PAR1') throw new KvlensInputError('not a parquet file (no PAR1 magic at the end)', path);
    const metaLength = tail.readUInt32LE(0);
    if (metaLength > size - 12) throw new KvlensInputError(`footer claims ${metaLength} bytes of metadata, the file has ${size - 12} before it`, path);
    if (metaLength > limit('PARQUET_METADATA_BYTES')) throw limitError('PARQUET_METADATA_BYTES', `footer metadata of ${metaLength} bytes`, path);
    return size;
  } finally {
    await fh.close();
  }
}

export async function openParquet(path: string, what: string): Promise<ParquetHandle> {
  await requireFile(path, what);
  const size = await checkFooter(path);
  const reader = new GuardedParquet(path, limit('PARSER_MS') + Math.ceil(size / 20_000));
  try {
    const { numRows, columns } = await reader.request<{ numRows: number; columns: string[] }>({ op: 'open', path }, 'reading the parquet metadata');
    if (!Number.isSafeInteger(numRows) || numRows < 0) throw new KvlensInputError(`metadata says ${numRows} rows`, path);
    const handle: ParquetHandle = { path, numRows, columns, close: () => reader.close() };
    readers.set(handle, reader);
    return handle;
  } catch (e) {
    reader.close();
    throw e;
  }
}

export function requireColumns(h: ParquetHandle, needed: string[]): void {
  const missing = needed.filter((c) => !h.columns.includes(c));
  if (missing.length) {
    h.close();
    throw new KvlensInputError(`parquet is missing column(s) ${missing.join(', ')} (has ${h.columns.join(', ')})`, h.path);
  }
}

/** Yields rows as objects, `batch` rows at a time. Binary columns stay Uint8Array (utf8: false). */
export async function* parquetRows(h: ParquetHandle, batch = 16): AsyncGenerator<{ row: Record<string, unknown>; index: number }> {
  const reader = readers.get(h);
  if (!reader) throw new KvlensInputError('parquet handle is closed', h.path);
  try {
    for (let start = 0; start < h.numRows; start += batch) {
      const end = Math.min(h.numRows, start + batch);
      let rows: Record<string, unknown>[];
      try {
        rows = await reader.request<Record<string, unknown>[]>({ op: 'rows', rowStart: start, rowEnd: end }, `decoding rows ${start}..${end - 1}`);
      } catch (e) {
        if (e instanceof KvlensInputError) throw new KvlensInputError(`cannot decode rows ${start}..${end - 1} (${e.message.slice(h.path.length + 2)})`, h.path);
        throw e;
      }
      if (!Array.isArray(rows)) throw new KvlensInputError(`rows ${start}..${end - 1} did not decode to a list`, h.path);
      for (const [k, row] of rows.entries()) yield { row: row && typeof row === 'object' ? row : {}, index: start + k };
    }
  } finally {
    reader.close();
  }
}

/** HF Image struct {bytes, path} -> ImageSource; null for a missing image. Bytes are the encoded JPEG/PNG. */
export function imageFromStruct(v: unknown, where: string): ImageSource | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') throw new KvlensInputError('image column is not a {bytes, path} struct', where);
  const s = v as { bytes?: unknown; path?: unknown };
  const name = typeof s.path === 'string' && s.path ? `${where} (${s.path})` : where;
  if (s.bytes instanceof Uint8Array && s.bytes.length > 0) return { kind: 'bytes', bytes: s.bytes, name };
  if (s.bytes === null || s.bytes === undefined) return null;
  throw new KvlensInputError('image struct has empty or non-binary bytes', where);
}

/** Text cell -> string (strings can arrive as Uint8Array when a column lacks the UTF8 annotation). */
export function cellString(v: unknown, column: string, where: string, optional = false): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if ((v === null || v === undefined) && optional) return '';
  throw new KvlensInputError(`column "${column}" must be a string, got ${v === null ? 'null' : typeof v}`, where);
}

export function cellStringList(v: unknown, column: string, where: string): string[] {
  if (!Array.isArray(v)) throw new KvlensInputError(`column "${column}" must be a list of strings`, where);
  return v.map((x, i) => cellString(x, `${column}[${i}]`, where));
}

export function cellNumberList(v: unknown, column: string, where: string): number[] {
  if (!Array.isArray(v) && !ArrayBuffer.isView(v)) throw new KvlensInputError(`column "${column}" must be a list of numbers`, where);
  return Array.from(v as ArrayLike<unknown>, (x, i) => {
    const n = typeof x === 'bigint' ? Number(x) : x;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new KvlensInputError(`column "${column}[${i}]" is not a number`, where);
    return n;
  });
}
