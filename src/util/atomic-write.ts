// One temp-file-and-rename writer for run directories, results and generated data (the feature store keeps its own,
// fsync'ed, in store/atomic.ts). The temp file sits beside the target (same folder, so the rename is atomic), is
// hidden and ends in .tmp, and is removed when the write fails, so readers never see a partial file.
import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ensureDir, ensureDirAsync } from './dirs.js';

let tmpCounter = 0;

function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${tmpCounter++}.tmp`);
}

/** Write bytes/text to `path` through a temp file beside it and a rename, creating its folder first. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await ensureDirAsync(dirname(path));
  const tmp = tempPath(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** writeFileAtomic for synchronous callers (probe result files written from worker threads). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  ensureDir(dirname(path));
  const tmp = tempPath(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* never created */ }
    throw e;
  }
}
