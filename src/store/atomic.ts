// Small crash-safety primitives: write-temp-then-rename, directory fsync, the writer lock, disk-full wrapping.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
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

/**
 * The writer lock: `<store>/.lock` holding "host pid". A lock left by a killed run (same host, dead pid) is taken
 * over; a live one is refused, so two runs never interleave shards in one store.
 */
export function acquireLock(lockPath: string): void {
  const me = `${hostname()} ${process.pid}\n`;
  try {
    const fd = openSync(lockPath, 'wx');
    writeFully(fd, Buffer.from(me), 0);
    closeSync(fd);
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw diskError(e, lockPath);
  }
  const [host, pidText] = readFileSync(lockPath, 'utf8').trim().split(/\s+/);
  const pid = Number(pidText);
  if (host !== hostname()) {
    throw new KvlensInputError(`the store is locked by a writer on host ${host} (pid ${pidText}); if no run is active there, delete the lock file`, lockPath);
  }
  if (pid === process.pid) {
    // Every writer releases its lock on close, failure or abort, so our own pid means a writer here is still open.
    throw new KvlensInputError('this process already has the store open for writing; close that writer first', lockPath);
  }
  if (isAlive(pid)) throw new KvlensInputError(`another kvlens run (pid ${pid}) is writing this store`, lockPath);
  writeFileAtomic(lockPath, me);
}

export function releaseLock(lockPath: string): void {
  rmSync(lockPath, { force: true });
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function moveAtomic(from: string, to: string): void {
  renameSync(from, to);
  fsyncDir(dirname(to));
}
