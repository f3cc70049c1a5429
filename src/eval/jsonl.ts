// A JSON Lines writer for raw benchmark outputs: one object per line, written as they come (nothing is held), into
// "<path>.partial" and renamed onto <path> only when the run completed, so a failed run never leaves a
// half-written file under the final name.

import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ensureDirAsync } from '../util/dirs.js';

export class JsonlWriter {
  private constructor(readonly path: string, private readonly partial: string, private handle: FileHandle | null) {}

  static async create(path: string): Promise<JsonlWriter> {
    await ensureDirAsync(dirname(path));
    const partial = `${path}.partial`;
    return new JsonlWriter(path, partial, await open(partial, 'w'));
  }

  async write(record: unknown): Promise<void> {
    if (!this.handle) throw new Error(`JSONL writer for ${this.path} is closed`);
    await this.handle.write(`${JSON.stringify(record)}\n`);
  }

  /** Bytes that are already whole JSON lines (OrderedJsonlWriter's copy). */
  async writeRaw(lines: Uint8Array): Promise<void> {
    if (!this.handle) throw new Error(`JSONL writer for ${this.path} is closed`);
    await this.handle.write(lines);
  }

  /** Flush and move the file into place. */
  async commit(): Promise<void> {
    if (!this.handle) return;
    await this.handle.sync();
    await this.handle.close();
    this.handle = null;
    await rename(this.partial, this.path);
  }

  /** Drop the partial file (on failure). */
  async abort(): Promise<void> {
    if (this.handle) {
      await this.handle.close().catch(() => undefined);
      this.handle = null;
    }
    await rm(this.partial, { force: true });
  }
}

/**
 * A JSON Lines writer for records produced out of input order (the runner answering image by image): each record
 * comes with its place in the input order (`seq`; records of one seq keep their write order). Lines go to
 * "<path>.spool" as they come — only their offsets stay in memory — and are copied into input order at commit, so the
 * file is the one an in-order run writes.
 */
export class OrderedJsonlWriter {
  private readonly index: { seq: number; offset: number; length: number }[] = [];
  private offset = 0;

  private constructor(readonly path: string, private readonly spool: string, private handle: FileHandle | null) {}

  static async create(path: string): Promise<OrderedJsonlWriter> {
    await ensureDirAsync(dirname(path));
    const spool = `${path}.spool`;
    return new OrderedJsonlWriter(path, spool, await open(spool, 'w+'));
  }

  async write(seq: number, record: unknown): Promise<void> {
    if (!this.handle) throw new Error(`JSONL writer for ${this.path} is closed`);
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    await this.handle.write(line, 0, line.length, this.offset);
    this.index.push({ seq, offset: this.offset, length: line.length });
    this.offset += line.length;
  }

  /** Copy the lines into input order ("<path>.partial"), then move the file into place. */
  async commit(): Promise<void> {
    if (!this.handle) return;
    const order = this.index.map((e, i) => ({ ...e, i })).sort((a, b) => a.seq - b.seq || a.i - b.i);
    const out = await JsonlWriter.create(this.path);
    try {
      let buf = Buffer.alloc(1 << 16);
      for (const e of order) {
        if (e.length > buf.length) buf = Buffer.alloc(e.length);
        await this.handle.read(buf, 0, e.length, e.offset);
        await out.writeRaw(buf.subarray(0, e.length));
      }
      await out.commit();
    } catch (err) {
      await out.abort();
      throw err;
    }
    await this.abort();
  }

  /** Drop the spool (after commit, or on failure). */
  async abort(): Promise<void> {
    if (this.handle) {
      await this.handle.close().catch(() => undefined);
      this.handle = null;
    }
    await rm(this.spool, { force: true });
  }
}
