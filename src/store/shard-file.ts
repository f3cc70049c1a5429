// One shard being built. Tensor data streams to a hidden temp data file as images arrive (memory stays at one image);
// finalising writes header + data into a second temp file, fsyncs it and renames it into place, so a shard under its
// final name is always complete. Offsets are contiguous with no gaps (the official safetensors loader rejects gaps);
// every tensor in a store has one dtype, so contiguity keeps each tensor aligned to its element size.

import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { layoutSafetensors } from '../tensor/safetensors.js';
import { DTYPE_BYTES } from '../tensor/tensor.js';
import { closeQuietly, diskError, fsyncDir, removeQuietly, tempPathFor, writeFully } from './atomic.js';
import type { StoreDType } from './format.js';

const COPY_CHUNK = 8 * 1024 * 1024;

export interface FinalisedShard {
  readonly bytes: number;
  readonly sha256: string;
}

export class ShardBuilder {
  private readonly specs: Array<{ name: string; dtype: StoreDType; shape: number[] }> = [];
  private readonly dataTmp: string;
  private fd: number | undefined;
  private bytes = 0;

  constructor(readonly finalPath: string, readonly dtype: StoreDType) {
    this.dataTmp = `${tempPathFor(finalPath).slice(0, -'.tmp'.length)}.data.tmp`;
  }

  /** Bytes of tensor data appended so far. */
  get dataBytes(): number {
    return this.bytes;
  }

  get tensorCount(): number {
    return this.specs.length;
  }

  /** Append one tensor ([rows, cols, D] grid already converted to the store dtype). */
  append(name: string, shape: readonly number[], data: Uint8Array): void {
    const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[this.dtype];
    if (data.byteLength !== expected) throw new Error(`shard tensor "${name}": ${data.byteLength} bytes for shape [${shape.join(', ')}]`);
    try {
      if (this.fd === undefined) this.fd = openSync(this.dataTmp, 'w+');
      writeFully(this.fd, data, this.bytes);
    } catch (e) {
      this.discard();
      throw diskError(e, this.dataTmp);
    }
    this.specs.push({ name, dtype: this.dtype, shape: [...shape] });
    this.bytes += data.byteLength;
  }

  /** Write the final file (header + data) atomically and remove the data temp. */
  finalise(metadata: Record<string, string>): FinalisedShard {
    const { header, offsets, dataBytes } = layoutSafetensors(this.specs, metadata, DTYPE_BYTES[this.dtype]);
    // Our running offsets and the layout's must agree, or the header would point at the wrong bytes.
    let pos = 0;
    this.specs.forEach((s, i) => {
      if (offsets[i] !== pos) throw new Error(`shard layout mismatch at "${s.name}": ${offsets[i]} vs ${pos}`);
      pos += s.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[this.dtype];
    });
    if (dataBytes !== this.bytes) throw new Error(`shard layout mismatch: ${dataBytes} data bytes vs ${this.bytes} written`);

    const tmp = tempPathFor(this.finalPath);
    const hash = createHash('sha256');
    let out: number | undefined;
    try {
      out = openSync(tmp, 'w');
      writeFully(out, header, 0);
      hash.update(header);
      if (this.fd !== undefined) this.copyData(out, header.length, hash);
      fsyncSync(out);
      closeSync(out);
      out = undefined;
      renameSync(tmp, this.finalPath);
    } catch (e) {
      if (out !== undefined) closeQuietly(out);
      removeQuietly(tmp);
      this.discard();
      throw diskError(e, tmp);
    }
    fsyncDir(dirname(this.finalPath));
    this.discard();
    return { bytes: header.length + this.bytes, sha256: hash.digest('hex') };
  }

  private copyData(out: number, at: number, hash: ReturnType<typeof createHash>): void {
    const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, this.bytes)));
    for (let done = 0; done < this.bytes;) {
      const n = readSync(this.fd!, buf, 0, Math.min(buf.length, this.bytes - done), done);
      if (n <= 0) throw new Error(`short read from ${this.dataTmp} at ${done}`);
      const chunk = buf.subarray(0, n);
      writeFully(out, chunk, at + done);
      hash.update(chunk);
      done += n;
    }
  }

  /** Drop everything written so far (the temp data file included). */
  discard(): void {
    if (this.fd !== undefined) closeQuietly(this.fd);
    this.fd = undefined;
    removeQuietly(this.dataTmp);
  }
}
