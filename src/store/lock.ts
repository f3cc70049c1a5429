// The writer lock of a store (`<store>/.lock`): a lease. It records who holds it (host, pid, the process's start time
// and PID namespace, so a reused PID in a restarted container is not mistaken for the holder) and a heartbeat (the
// file's mtime, refreshed while the writer runs). A lock is stale, and taken over with a warning, when:
//   - it is empty or unreadable (a writer killed mid-write by an older kvlens, or a damaged file);
//   - its holder ran on this host, in this PID namespace, and that process is gone (or the PID now belongs to a process
//     started at another time);
//   - otherwise (another host, another container) when its heartbeat is older than the stale time (default 300 s,
//     KVLENS_LOCK_STALE_S).
//
// Atomicity: a lock is created complete (written to a temp file, then hard-linked into place, which fails if a lock
// exists), so a disk-full error never leaves an empty lock and no reader ever sees a half-written one. Taking over a
// stale lock goes through an exclusive takeover token (`.lock.takeover`): only its holder may replace the lock, and only
// if the lock is still the very file (inode and bytes) judged stale. The token names its holder and is cleared only
// when that holder is gone, never because it is slow. Of any number of processes racing for one stale lock, exactly
// one wins; the others then see a live lock.

import { closeSync, fstatSync, fsyncSync, linkSync, openSync, readFileSync, readlinkSync, renameSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { KvlensInputError } from '../util/errors.js';
import { closeQuietly, diskError, removeQuietly, writeFully } from './atomic.js';

export interface LockHolder {
  readonly host: string;
  readonly pid: number;
  /** "<boot id>:<start time in clock ticks>" from /proc; null where /proc is absent. */
  readonly start: string | null;
  /** PID namespace ("pid:[4026531836]"); PIDs are only comparable within one. */
  readonly pidns: string | null;
  /** When the lock was taken (informational). */
  readonly since: string;
}

export interface LockOptions {
  /** A lock whose heartbeat is older than this is stale when its holder cannot be checked (ms; default 300 s or KVLENS_LOCK_STALE_S). */
  readonly staleAfterMs?: number;
  /** Heartbeat period (ms; default a tenth of the stale time, at most 30 s). */
  readonly heartbeatMs?: number;
  /** Called with a one-line warning when a stale lock is taken over (default: console.error). */
  readonly onWarning?: (message: string) => void;
}

const DEFAULT_STALE_S = 300;
const TAKEOVER_TOKEN_STALE_MS = 10_000;
const CONTENTION_LIMIT_MS = 5_000;

/** Lock paths held by this process (a second writer on the same store in one process is refused). */
const heldHere = new Set<string>();

/** The host name a lock records: KVLENS_HOSTNAME when set (tests, or pods that share a hostname), else the OS's. */
export function lockHostname(): string {
  return process.env.KVLENS_HOSTNAME || osHostname();
}

export function defaultStaleMs(): number {
  const env = process.env.KVLENS_LOCK_STALE_S;
  if (env !== undefined && env !== '') {
    const s = Number(env);
    if (!(s > 0)) throw new KvlensInputError(`environment variable KVLENS_LOCK_STALE_S="${env}" is not a positive number of seconds`);
    return s * 1000;
  }
  return DEFAULT_STALE_S * 1000;
}

export class StoreLock {
  private timer: NodeJS.Timeout | undefined;
  private lost: string | undefined;
  private released = false;

  private constructor(readonly path: string, private readonly ino: number, private readonly bytes: Buffer, readonly holder: LockHolder, heartbeatMs: number) {
    heldHere.add(path);
    this.timer = setInterval(() => this.heartbeat(), heartbeatMs);
    this.timer.unref();
  }

  /** Take the lock, or throw KvlensInputError saying who holds it and when it would become stale. */
  static acquire(path: string, opts: LockOptions = {}): StoreLock {
    const staleMs = opts.staleAfterMs ?? defaultStaleMs();
    const heartbeatMs = opts.heartbeatMs ?? Math.min(30_000, Math.max(10, staleMs / 10));
    const me: LockHolder = { host: lockHostname(), pid: process.pid, start: processStart(process.pid), pidns: pidNamespace(), since: new Date().toISOString() };
    const text = `${JSON.stringify(me)}\n`;
    const deadline = Date.now() + CONTENTION_LIMIT_MS;
    for (let attempt = 0; ; attempt++) {
      const tmp = writeTemp(path, text);
      try {
        try {
          linkSync(tmp, path);
          return new StoreLock(path, statSync(path).ino, Buffer.from(text), me, heartbeatMs);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw diskError(e, path);
        }
        const seen = readLock(path);
        if (seen) {
          const verdict = judge(path, seen, me, staleMs);
          if (verdict.live) throw new KvlensInputError(verdict.reason, path);
          const won = takeOver(path, seen, tmp, me);
          if (won === 'won') {
            (opts.onWarning ?? ((m: string) => console.error(m)))(`warning: ${path}: took over a stale lock (${verdict.reason})`);
            return new StoreLock(path, statSync(path).ino, Buffer.from(text), me, heartbeatMs);
          }
        }
      } finally {
        removeQuietly(tmp);
      }
      if (Date.now() > deadline) throw new KvlensInputError('could not take the lock: other processes kept changing it for 5 s', path);
      sleepMs(Math.min(50, 1 + attempt));
    }
  }

  /** Refresh the heartbeat (the lock file's mtime); notices when the lock is no longer ours. */
  heartbeat(): void {
    if (this.released || this.lost) return;
    try {
      this.check();
      if (this.lost) return;
      const now = new Date();
      utimesSync(this.path, now, now);
    } catch {
      // A transient error (an NFS hiccup): try again at the next beat.
    }
  }

  /** Throw unless this process still holds the lock (checked before anything becomes visible in the store). */
  assertHeld(): void {
    if (!this.lost) this.check();
    if (this.lost) throw new KvlensInputError(`this writer lost its lock (${this.lost}); stopping so two writers never interleave`, this.path);
  }

  /** Ours = the same file (inode) with our bytes: an inode number alone can be reused by a replacement. */
  private isOurs(): boolean | 'gone' {
    const now = readLock(this.path);
    if (!now) return 'gone';
    return now.ino === this.ino && now.bytes.equals(this.bytes);
  }

  private check(): void {
    const ours = this.isOurs();
    if (ours === 'gone') this.lost = 'the lock file was removed';
    else if (!ours) this.lost = 'the lock file was replaced by another writer';
  }

  /** Remove the lock if it is still ours (never another writer's). */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    heldHere.delete(this.path);
    try {
      if (this.isOurs() === true) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

/** Write the lock text to a unique temp file beside the lock; on any error (disk full) nothing is left behind. */
function writeTemp(path: string, text: string): string {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx');
    writeFully(fd, Buffer.from(text), 0);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    return tmp;
  } catch (e) {
    if (fd !== undefined) closeQuietly(fd);
    removeQuietly(tmp);
    throw diskError(e, path);
  }
}

interface SeenLock {
  readonly ino: number;
  readonly mtimeMs: number;
  readonly bytes: Buffer;
  readonly holder: LockHolder | null;
}

/** The current lock file (null when it vanished meanwhile). */
function readLock(path: string): SeenLock | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new KvlensInputError(`cannot read the lock (${(e as NodeJS.ErrnoException).code})`, path);
  }
  try {
    const st = fstatSync(fd); // of the file we read, not of whatever the path names a moment later
    const bytes = readFileSync(fd);
    return { ino: st.ino, mtimeMs: st.mtimeMs, bytes, holder: parseHolder(bytes) };
  } finally {
    closeSync(fd);
  }
}

function parseHolder(bytes: Buffer): LockHolder | null {
  const text = bytes.toString('utf8').trim();
  if (!text || text.length > 4096) return null;
  try {
    const j = JSON.parse(text) as Partial<LockHolder>;
    if (typeof j.host !== 'string' || !Number.isInteger(j.pid)) return null;
    return { host: j.host, pid: j.pid!, start: j.start ?? null, pidns: j.pidns ?? null, since: String(j.since ?? '') };
  } catch {
    // The format of kvlens before leases: "host pid".
    const [host, pid] = text.split(/\s+/);
    return host && /^\d+$/.test(pid ?? '') ? { host, pid: Number(pid), start: null, pidns: null, since: '' } : null;
  }
}

/** Is the lock live (refuse, with why) or stale (take over, with why)? */
function judge(path: string, seen: SeenLock, me: LockHolder, staleMs: number): { live: boolean; reason: string } {
  const h = seen.holder;
  if (!h) return { live: false, reason: seen.bytes.length ? 'the lock file is unreadable' : 'the lock file is empty' };
  const age = Math.max(0, Date.now() - seen.mtimeMs);
  const who = `host ${h.host}, pid ${h.pid}${h.since ? `, since ${h.since}` : ''}`;
  const checkable = h.host === me.host && h.pidns === me.pidns && (h.start === null) === (me.start === null);
  if (checkable) {
    if (h.pid === me.pid && h.start === me.start) {
      if (heldHere.has(path)) return { live: true, reason: 'this process already has the store open for writing; close that writer first' };
      return { live: false, reason: `left by this process (${who}) without being released` };
    }
    const start = processStart(h.pid);
    if (start === null && !pidAlive(h.pid)) return { live: false, reason: `its writer (${who}) is no longer running` };
    if (h.start !== null && start !== h.start) return { live: false, reason: `its writer (${who}) is no longer running; pid ${h.pid} now belongs to another process` };
    return { live: true, reason: `another kvlens run (${who}) is writing this store; wait for it to finish` };
  }
  if (age > staleMs) return { live: false, reason: `its writer (${who}) has not renewed it for ${Math.round(age / 1000)} s (stale after ${Math.round(staleMs / 1000)} s)` };
  return {
    live: true,
    reason: `the store is locked by a writer on ${who}, which renewed the lock ${Math.round(age / 1000)} s ago; it is taken over once not ` +
      `renewed for ${Math.round(staleMs / 1000)} s (KVLENS_LOCK_STALE_S). Rerun then, or use another --out`,
  };
}

/**
 * Replace the stale lock `seen` by ours (the temp file `tmp`, which holds our holder text), through the exclusive
 * takeover token. The token is a hard link of `tmp`, so it is born complete and names its holder like a lock does; it
 * is cleared only when that holder is provably gone (same host: its process ended) or, on another host, after
 * TAKEOVER_TOKEN_STALE_MS. A holder that is merely slow (a heavily loaded machine can stall a process for seconds)
 * keeps its token, so no second process ever enters while it is inside; and the holder checks the token is still its
 * own before replacing the lock, and removes only its own token.
 */
function takeOver(path: string, seen: SeenLock, tmp: string, me: LockHolder): 'won' | 'retry' {
  const token = `${path}.takeover`;
  const mine = statSync(tmp).ino;
  try {
    linkSync(tmp, token);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw diskError(e, token);
    clearAbandonedToken(token, me); // then retry: the lock may have been replaced meanwhile
    return 'retry';
  }
  const ours = () => {
    try {
      return statSync(token).ino === mine;
    } catch {
      return false;
    }
  };
  try {
    const now = readLock(path);
    if (!now || now.ino !== seen.ino || !now.bytes.equals(seen.bytes)) return 'retry'; // replaced or removed meanwhile
    if (!ours()) return 'retry'; // cleared as abandoned while this process stalled: never replace the lock without it
    renameSync(tmp, path);
    return 'won';
  } finally {
    if (ours()) removeQuietly(token);
  }
}

/**
 * Remove a takeover token whose holder is gone (judged like a lock, with the token's own stale time). Exactly the
 * file judged is removed: it is first renamed to a private name (atomic), and put back if it turns out to be a newer
 * token that replaced the judged one in between.
 */
function clearAbandonedToken(token: string, me: LockHolder): void {
  const t = readLock(token);
  if (!t || judge(token, t, me, TAKEOVER_TOKEN_STALE_MS).live) return;
  const grave = `${token}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  try {
    renameSync(token, grave);
  } catch {
    return; // cleared by another process meanwhile
  }
  try {
    if (statSync(grave).ino !== t.ino) {
      try {
        linkSync(grave, token);
      } catch { /* a newer token exists: its holder sees it is not its own and retries */ }
    }
  } finally {
    removeQuietly(grave);
  }
}

/** "<boot id>:<start time>" of a process, or null without /proc (or when the process is gone). */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return `${bootId()}:${fields[19]}`; // field 22 of stat; fields[] starts at field 3
  } catch {
    return null;
  }
}

let cachedBoot: string | undefined;
function bootId(): string {
  if (cachedBoot === undefined) {
    try {
      cachedBoot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cachedBoot = '';
    }
  }
  return cachedBoot;
}

/** This process's PID namespace, e.g. "pid:[4026531836]" (null without /proc). */
export function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}
