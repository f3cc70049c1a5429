// Creating output folders without Node's recursive mkdir: on Node 20, mkdirSync / fs.promises.mkdir with
// { recursive: true } loop forever when the kernel answers ENOENT for a folder whose parent exists (any path under
// /proc, some FUSE and network mounts): `--out /proc/x` spun one core until killed. Here the missing components are
// made one by one (non-recursive mkdir), so every failure is one errno, reported naming the folder.
import { mkdirSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { KvlensInputError, inputErrorFromErrno } from './errors.js';

/** Existing ancestor first, then the folders to create under it (outermost first). */
function plan(dir: string): string[] {
  const missing: string[] = [];
  for (let p = resolve(dir); ; p = dirname(p)) {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw failure(e, p);
    }
    if (isDir === true) return missing.reverse();
    if (isDir === false) throw new KvlensInputError('is a file, not a folder: cannot create folders in it', p);
    if (dirname(p) === p) throw new KvlensInputError('no such file or folder (the file system root is missing?)', p);
    missing.push(p);
  }
}

function failure(e: unknown, path: string): KvlensInputError {
  const known = inputErrorFromErrno(e);
  if (known) {
    const where = known.where ?? '';
    return new KvlensInputError(`cannot create the folder: ${where ? known.message.slice(where.length + 2) : known.message}`, path);
  }
  return new KvlensInputError(`cannot create the folder (${e instanceof Error ? e.message : String(e)})`, path);
}

function already(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** mkdir -p with bounded work: at most one mkdir per missing component, KvlensInputError naming the folder on failure. */
export function ensureDir(dir: string): void {
  for (const p of plan(dir)) {
    try {
      mkdirSync(p);
    } catch (e) {
      if (!((e as NodeJS.ErrnoException).code === 'EEXIST' && already(p))) throw failure(e, p);
    }
  }
}

/** ensureDir for async callers (the same bounded walk; each mkdir awaited). */
export async function ensureDirAsync(dir: string): Promise<void> {
  for (const p of plan(dir)) {
    try {
      await mkdir(p);
    } catch (e) {
      if (!((e as NodeJS.ErrnoException).code === 'EEXIST' && already(p))) throw failure(e, p);
    }
  }
}
