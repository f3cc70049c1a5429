// A JSON Lines writer for raw benchmark outputs: one object per line, written as they come (nothing is held), into
// "<path>.partial" and renamed onto <path> only when the run completed, so a failed run never leaves a
// half-written file under the final name.

import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

export class JsonlWriter {
  private constructor(readonly path: string, private readonly partial: string, private handle: FileHandle | null) {}

  static async create(path: string): Promise<JsonlWriter> {
    await mkdir(dirname(path), { recursive: true });
    const partial = `${path}.partial`;
    return new JsonlWriter(path, partial, await open(partial, 'w'));
  }

  async write(record: unknown): Promise<void> {
    if (!this.handle) throw new Error(`JSONL writer for ${this.path} is closed`);
    await this.handle.write(`${JSON.stringify(record)}\n`);
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
