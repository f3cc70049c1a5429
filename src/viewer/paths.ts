// Confinement of served files to one directory. A request path is decoded exactly once; anything that could name a
// file outside the root is refused: '..' segments, absolute or drive paths, backslashes, NUL, a '%' left after
// decoding (double encoding), and symlinks whose real path leaves the root.
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, sep } from 'node:path';

export type Resolved = { ok: true; path: string } | { ok: false; status: 403 | 404; reason: string };

/** Check a decoded relative path's shape (no I/O). */
export function checkRelativePath(rel: string): string | null {
  if (rel.includes('\0')) return 'NUL byte';
  if (rel.includes('\\')) return 'backslash';
  if (rel.includes('%')) return 'percent sign after decoding (double encoding)';
  if (isAbsolute(rel) || /^[A-Za-z]:/.test(rel)) return 'absolute path';
  if (rel.split('/').some((seg) => seg === '..' || seg === '.')) return 'dot segment';
  return null;
}

/**
 * Resolve the raw (still percent-encoded) path under a URL prefix to a real file inside `root`. `root` must already be
 * a real path (realpath'd by the caller once).
 */
export async function resolveInside(realRoot: string, rawRel: string): Promise<Resolved> {
  let rel: string;
  try {
    rel = decodeURIComponent(rawRel);
  } catch {
    return { ok: false, status: 403, reason: 'malformed percent-encoding' };
  }
  const bad = checkRelativePath(rel);
  if (bad) return { ok: false, status: 403, reason: bad };
  let real: string;
  try {
    real = await realpath(join(realRoot, rel));
  } catch {
    return { ok: false, status: 404, reason: 'not found' };
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep)) return { ok: false, status: 403, reason: 'resolves outside the served directory' };
  const st = await stat(real);
  if (!st.isFile()) return { ok: false, status: 404, reason: 'not a file' };
  return { ok: true, path: real };
}
