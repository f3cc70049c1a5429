// Small crash-safety primitives: write-temp-then-rename, directory fsync, disk-full wrapping (the writer lock: lock.ts).

import { closeSync, fsyncSync, openSync, renameSync, writeSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { KvlensInputError } from '../util/errors.js';

/** Temp path beside `path` (same directory, so rename is atomic); hidden and ending in .tmp so cleanup finds it. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp`);
}

/** Write all of `bytes` at `position` (writeSync may write less than asked). */
export function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    done += writeSync(fd, bytes, done, bytes.length - done, position + done);
  }
}

/** Make a rename durable across power loss (SIGKILL alone would not need it; it is cheap). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Replace `path` with `text` atomically: temp file, fsync, rename. Never leaves a half-written file under `path`. */
export function writeFileAtomic(path: string, text: string | Uint8Array): void {
  const tmp = tempPathFor(path);
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    writeFully(fd, bytes, 0);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeQuietly(fd);
    removeQuietly(tmp);
    throw diskError(e, path);
  }
  fsyncDir(dirname(path));
}

export function closeQuietly(fd: number): void {
  try { closeSync(fd); } catch { /* already closed */ }
}

export function removeQuietly(path: string): void {
  try { unlinkSync(path); } catch { /* absent */ }
}

/** Errors the user can act on (disk full, quota, permissions) become KvlensInputError naming the file; others pass through. */
export function diskError(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new KvlensInputError(`disk full while writing (${code}); the temporary file was removed`, path);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new KvlensInputError(`cannot write (${code})`, path);
  return e;
}

export function moveAtomic(from: string, to: string): void {
  renameSync(from, to);
  fsyncDir(dirname(to));
}
