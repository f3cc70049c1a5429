// File-system helpers shared by the loaders: every failure becomes a KvlensInputError naming the file and the problem.
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import { describeValue, errorMessage, KvlensInputError } from '../util/errors.js';
import { checkPixelCount, isPng, readJpegHeader, readPngHeader } from '../util/image-bounds.js';
import type { ImageSource, LabelGrid, LoaderOptions } from './types.js';

export async function isDirectory(path: string): Promise<boolean> {
  try { return (await stat(path)).isDirectory(); } catch { return false; }
}

export async function isFile(path: string): Promise<boolean> {
  try { return (await stat(path)).isFile(); } catch { return false; }
}

export async function requireDirectory(path: string, what: string): Promise<void> {
  if (!(await isDirectory(path))) throw new KvlensInputError(`missing folder (${what})`, path);
}

export async function requireFile(path: string, what: string): Promise<void> {
  if (!(await isFile(path))) throw new KvlensInputError(`missing file (${what})`, path);
}

/** Sorted entry names of a folder (files and folders); a missing folder is an error naming it. */
export async function listDir(path: string, what: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch {
    throw new KvlensInputError(`missing folder (${what})`, path);
  }
}

export async function readBytes(path: string, what: string): Promise<Uint8Array> {
  try {
    const b = await readFile(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch {
    throw new KvlensInputError(`missing or unreadable file (${what})`, path);
  }
}

/** Parses a JSON file; a truncated or malformed file is reported with the parser's message. */
export async function readJson(path: string, what: string): Promise<unknown> {
  const text = Buffer.from(await readBytes(path, what)).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new KvlensInputError(`malformed JSON in ${what} (${(e as Error).message}; ${text.length} bytes — truncated?)`, path);
  }
}

/** Non-empty lines of a text file, with CR stripped (MME and some lists use CRLF; some lack a final newline). */
export async function readLines(path: string, what: string): Promise<string[]> {
  const text = Buffer.from(await readBytes(path, what)).toString('utf8');
  return text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim().length > 0);
}

/** Streams the non-empty lines of a text file (JSON Lines) with their 1-based line numbers. */
export async function* streamLines(path: string, what: string): AsyncGenerator<{ line: string; lineNo: number }> {
  await requireFile(path, what);
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const raw of rl) {
    lineNo++;
    const line = raw.replace(/\r$/, '');
    if (line.trim().length > 0) yield { line, lineNo };
  }
}

/** Writes a file through a temporary name + rename, so a failure never leaves a half-written file. */
export { writeFileAtomic } from '../util/atomic-write.js';

export function describeImage(src: ImageSource): string {
  return src.kind === 'path' ? src.path : src.name;
}

function isBmp(b: Uint8Array): boolean { return b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d; }

/**
 * Width/height from the image header (no full decode), checked against the file: PNG/JPEG sizes must be plausible for
 * the file's length and every size within the IMAGE_PIXELS limit, since mask buffers are sized from it. EXIF
 * orientation is ignored, as PIL does. BMP (MSRC) included.
 */
export async function imageSize(src: ImageSource): Promise<{ width: number; height: number }> {
  const where = describeImage(src);
  const bytes = src.kind === 'path' ? await readBytes(src.path, 'image') : src.bytes;
  if (isPng(bytes)) return readPngHeader(bytes, where);
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return readJpegHeader(bytes, where);
  let size: { width: number; height: number };
  try {
    if (isBmp(bytes) && bytes.length >= 26) {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      size = { width: dv.getInt32(18, true), height: Math.abs(dv.getInt32(22, true)) };
    } else {
      const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
      if (!meta.width || !meta.height) throw new Error('no size in header');
      size = { width: meta.width, height: meta.height };
    }
  } catch (e) {
    throw new KvlensInputError(`cannot read image header (${errorMessage(e)})`, where);
  }
  checkPixelCount(size.width, size.height, where);
  return size;
}

/** A mask must cover its image pixel for pixel; names both files when it does not. */
export async function checkMaskMatchesImage(mask: LabelGrid, maskPath: string, image: ImageSource): Promise<void> {
  const { width, height } = await imageSize(image);
  if (width !== mask.width || height !== mask.height) {
    throw new KvlensInputError(
      `mask is ${mask.width}x${mask.height} but its image ${describeImage(image)} is ${width}x${height}`, maskPath);
  }
}

/**
 * Runs `load` over entries, yielding samples one at a time. In tolerant mode (onProblem set) an input error
 * is reported and the entry skipped; otherwise the first error ends the iteration.
 */
export async function* loadEach<E, S>(entries: Iterable<E> | AsyncIterable<E>, load: (e: E) => Promise<S>,
  opts: LoaderOptions): AsyncGenerator<S> {
  let n = 0;
  for await (const entry of entries) {
    if (opts.limit !== undefined && n >= opts.limit) return;
    n++;
    let sample: S;
    try {
      sample = await load(entry);
    } catch (e) {
      if (opts.onProblem && e instanceof KvlensInputError) { opts.onProblem(e); continue; }
      throw e;
    }
    yield sample;
  }
}

export function expectObject(v: unknown, where: string, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new KvlensInputError(`${what} must be an object`, where);
  return v as Record<string, unknown>;
}

export function expectNumber(obj: Record<string, unknown>, key: string, where: string): number {
  const v = obj[key];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  throw new KvlensInputError(`field "${key}" must be a number, got ${describeValue(v)}`, where);
}

export function expectString(obj: Record<string, unknown>, key: string, where: string): string {
  const v = obj[key];
  if (typeof v !== 'string') throw new KvlensInputError(`field "${key}" must be a string, got ${describeValue(v)}`, where);
  return v;
}

export function expectArray(obj: Record<string, unknown>, key: string, where: string): unknown[] {
  const v = obj[key];
  if (!Array.isArray(v)) throw new KvlensInputError(`field "${key}" must be an array`, where);
  return v;
}

export function expectNumberArray(obj: Record<string, unknown>, key: string, where: string, length?: number): number[] {
  const arr = expectArray(obj, key, where);
  if (length !== undefined && arr.length < length) {
    throw new KvlensInputError(`field "${key}" must have ${length} numbers, got ${arr.length}`, where);
  }
  return arr.map((x, i) => {
    const n = typeof x === 'string' ? Number(x) : x;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new KvlensInputError(`field "${key}[${i}]" is not a number`, where);
    return n;
  });
}
