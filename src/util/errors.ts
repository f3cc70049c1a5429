// Errors a user can act on: every kvlens error names the input (file, tensor, field) and what was expected.
// Messages quote user values through describeValue, which never throws: values from hostile files can be deeply
// nested, self-containing (a pickle list that holds itself), BigInt, or megabytes long, and JSON.stringify fails or
// floods on each of those.

/** Bad input from the user's side: a file, a config field, a tensor, a CLI flag. Exit code 2 in the CLI. */
export class KvlensInputError extends Error {
  override readonly name = 'KvlensInputError';
  constructor(message: string, readonly where?: string) {
    super(where ? `${where}: ${message}` : message);
  }
}

/** Programmer misuse of the API (unknown hook name, layer out of range, shape mismatch). */
export class KvlensUsageError extends Error {
  override readonly name = 'KvlensUsageError';
}

const MAX_DEPTH = 3;
const MAX_ITEMS = 8;

/**
 * A short, JSON-like rendering of any value for an error message: bounded depth, item count and length, cycles shown
 * as [circular], BigInt as 123n, typed arrays by type and length. Never throws.
 */
export function describeValue(v: unknown, maxLength = 120): string {
  let s: string;
  try {
    s = render(v, 0, new Set());
  } catch {
    s = `<${typeof v}>`;
  }
  return s.length > maxLength ? `${s.slice(0, maxLength - 3)}...` : s;
}

function render(v: unknown, depth: number, seen: Set<unknown>): string {
  switch (typeof v) {
    case 'string': return JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}...` : v);
    case 'number': case 'boolean': return String(v);
    case 'bigint': { // decimal printing of a huge integer is slow; its hex length is not
      const hex = (v < 0n ? -v : v).toString(16);
      return hex.length > 24 ? `<${v < 0n ? 'negative ' : ''}${hex.length * 4}-bit integer>` : `${v}n`;
    }
    case 'undefined': return 'undefined';
    case 'symbol': return 'symbol';
    case 'function': return 'function';
  }
  if (v === null) return 'null';
  if (seen.has(v)) return '[circular]';
  if (ArrayBuffer.isView(v)) return `${v.constructor?.name ?? 'bytes'}(${(v as unknown as ArrayLike<unknown>).length ?? v.byteLength})`;
  if (depth >= MAX_DEPTH) return Array.isArray(v) ? `[${v.length} item(s)]` : '{...}';
  seen.add(v);
  try {
    if (Array.isArray(v)) {
      const items = v.slice(0, MAX_ITEMS).map((x) => render(x, depth + 1, seen));
      if (v.length > MAX_ITEMS) items.push(`... ${v.length - MAX_ITEMS} more`);
      return `[${items.join(', ')}]`;
    }
    const keys = Object.keys(v as object);
    const items = keys.slice(0, MAX_ITEMS).map((k) => `${JSON.stringify(k.slice(0, 60))}: ${render((v as Record<string, unknown>)[k], depth + 1, seen)}`);
    if (keys.length > MAX_ITEMS) items.push(`... ${keys.length - MAX_ITEMS} more`);
    return `{${items.join(', ')}}`;
  } finally {
    seen.delete(v);
  }
}

/**
 * `record[key]` only when the record itself holds the key: a name from a file or the command line ("constructor",
 * "__proto__", "hasOwnProperty") must never reach Object.prototype.
 */
export function ownValue<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** The message of whatever was thrown (an Error, a string, anything), never throwing itself. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return typeof e.message === 'string' ? e.message : describeValue(e.message);
  return describeValue(e);
}

/** Node's file-system errors (errno codes) a user causes with a path: wrong permissions, a file where a folder goes. */
const USER_ERRNO: Record<string, string> = {
  EACCES: 'permission denied', EPERM: 'operation not permitted', ENOTDIR: 'a path component is a file, not a folder',
  EISDIR: 'is a folder, expected a file', ENOENT: 'no such file or folder', EEXIST: 'already exists', ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system', ENAMETOOLONG: 'file name too long', EDQUOT: 'disk quota exceeded', EMFILE: 'too many open files',
};

/** A Node errno error on a user-given path as a KvlensInputError naming the path (null for anything else). */
export function inputErrorFromErrno(e: unknown): KvlensInputError | null {
  const err = e as NodeJS.ErrnoException | undefined;
  if (!err || typeof err !== 'object' || typeof err.code !== 'string') return null;
  const what = ownValue(USER_ERRNO, err.code);
  if (!what) return null;
  const op = err.syscall ? ` (${err.syscall})` : '';
  return new KvlensInputError(`${what}${op}`, typeof err.path === 'string' ? err.path : undefined);
}

/** A file name or id as one printable line: JSON-escaped (quoted) when it holds control characters (a newline), else as is. */
export function printable(name: string): string {
  return /[\u0000-\u001f\u007f]/.test(name) ? JSON.stringify(name) : name;
}
