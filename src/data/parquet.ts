// Streaming parquet rows (hyparquet) in small batches, so a 150 MB BLINK file is never held whole in memory,
// plus the Hugging Face `Image` struct {bytes, path} -> ImageSource conversion (null/absent -> null).
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import type { AsyncBuffer, FileMetaData } from 'hyparquet';
import { KvlensInputError } from '../util/errors.js';
import { requireFile } from './io.js';
import type { ImageSource } from './types.js';

export interface ParquetHandle { path: string; file: AsyncBuffer; metadata: FileMetaData; numRows: number; columns: string[] }

export async function openParquet(path: string, what: string): Promise<ParquetHandle> {
  await requireFile(path, what);
  try {
    const file = await asyncBufferFromFile(path);
    const metadata = await parquetMetadataAsync(file);
    const columns = topLevelColumns(metadata);
    return { path, file, metadata, numRows: Number(metadata.num_rows), columns };
  } catch (e) {
    if (e instanceof KvlensInputError) throw e;
    throw new KvlensInputError(`not a readable parquet file (${(e as Error).message})`, path);
  }
}

/** Top-level column names: the root's direct children, found by walking the flattened schema by num_children. */
function topLevelColumns(meta: FileMetaData): string[] {
  const skip = (k: number): number => {
    let next = k + 1;
    for (let q = 0; q < (meta.schema[k].num_children ?? 0); q++) next = skip(next);
    return next;
  };
  const names: string[] = [];
  let i = 1;
  for (let c = 0; c < (meta.schema[0].num_children ?? 0); c++) { names.push(meta.schema[i].name); i = skip(i); }
  return names;
}

export function requireColumns(h: ParquetHandle, needed: string[]): void {
  const missing = needed.filter((c) => !h.columns.includes(c));
  if (missing.length) throw new KvlensInputError(`parquet is missing column(s) ${missing.join(', ')} (has ${h.columns.join(', ')})`, h.path);
}

/** Yields rows as objects, `batch` rows at a time. Binary columns stay Uint8Array (utf8: false). */
export async function* parquetRows(h: ParquetHandle, batch = 16): AsyncGenerator<{ row: Record<string, unknown>; index: number }> {
  for (let start = 0; start < h.numRows; start += batch) {
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: h.file, metadata: h.metadata, rowStart: start, rowEnd: Math.min(h.numRows, start + batch), utf8: false });
    } catch (e) {
      throw new KvlensInputError(`cannot decode rows ${start}..${start + batch - 1} (${(e as Error).message})`, h.path);
    }
    for (const [k, row] of rows.entries()) yield { row, index: start + k };
  }
}

/** HF Image struct {bytes, path} -> ImageSource; null for a missing image. Bytes are the encoded JPEG/PNG. */
export function imageFromStruct(v: unknown, where: string): ImageSource | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') throw new KvlensInputError('image column is not a {bytes, path} struct', where);
  const s = v as { bytes?: unknown; path?: unknown };
  const name = typeof s.path === 'string' && s.path ? `${where} (${s.path})` : where;
  if (s.bytes instanceof Uint8Array && s.bytes.length > 0) return { kind: 'bytes', bytes: s.bytes, name };
  if (s.bytes === null || s.bytes === undefined) return null;
  throw new KvlensInputError('image struct has empty or non-binary bytes', where);
}

/** Text cell -> string (strings can arrive as Uint8Array when a column lacks the UTF8 annotation). */
export function cellString(v: unknown, column: string, where: string, optional = false): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if ((v === null || v === undefined) && optional) return '';
  throw new KvlensInputError(`column "${column}" must be a string, got ${v === null ? 'null' : typeof v}`, where);
}

export function cellStringList(v: unknown, column: string, where: string): string[] {
  if (!Array.isArray(v)) throw new KvlensInputError(`column "${column}" must be a list of strings`, where);
  return v.map((x, i) => cellString(x, `${column}[${i}]`, where));
}

export function cellNumberList(v: unknown, column: string, where: string): number[] {
  if (!Array.isArray(v) && !ArrayBuffer.isView(v)) throw new KvlensInputError(`column "${column}" must be a list of numbers`, where);
  return Array.from(v as ArrayLike<unknown>, (x, i) => {
    const n = typeof x === 'bigint' ? Number(x) : x;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new KvlensInputError(`column "${column}[${i}]" is not a number`, where);
    return n;
  });
}
