// safetensors: 8-byte little-endian header length N, N bytes of JSON header, then the raw data section.
// The header maps tensor name -> { dtype, shape, data_offsets: [begin, end] } (offsets relative to the
// data section) plus an optional "__metadata__" string map. We validate everything before use, because
// the engine hands these offsets to onnxruntime as external data: a lying header must fail here, loudly.

import { closeSync, fstatSync, openSync, readSync, renameSync, writeSync, unlinkSync, existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { describeValue, KvlensInputError, ownValue } from '../util/errors.js';
import { DTYPE_BYTES, numel, tensor, type DType, type Tensor } from './tensor.js';

/** safetensors dtype strings <-> kvlens dtypes. */
const ST_TO_DTYPE: Record<string, DType> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64', I32: 'int32', U8: 'uint8', I8: 'int8', BOOL: 'bool',
};
const DTYPE_TO_ST: Record<DType, string> = Object.fromEntries(Object.entries(ST_TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;

export interface TensorEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's first byte in the file (8 + header length + data_offsets[0]). */
  readonly fileOffset: number;
  readonly byteLength: number;
  /** The file that holds it (the real path, symlinks resolved). */
  readonly file: string;
}

export interface SafetensorsHeader {
  readonly file: string;
  readonly headerLength: number;
  readonly dataStart: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, TensorEntry>;
}

const MAX_HEADER = 100 * 1024 * 1024;

/** Read and validate a safetensors header. Throws KvlensInputError naming the file and the problem. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    throw new KvlensInputError('file not found', path);
  }
  const fd = openSync(real, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw new KvlensInputError(`truncated safetensors file: ${size} bytes, need at least 8 for the header length`, path);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER)) throw new KvlensInputError(`header length ${n} is implausible (> ${MAX_HEADER} bytes)`, path);
    const headerLength = Number(n);
    if (8 + headerLength > size) {
      throw new KvlensInputError(`truncated: header claims ${headerLength} bytes but the file has only ${size - 8} after the length field`, path);
    }
    const hb = Buffer.alloc(headerLength);
    readSync(fd, hb, 0, headerLength, 8);
    let json: unknown;
    try {
      json = JSON.parse(hb.toString('utf8'));
    } catch (e) {
      throw new KvlensInputError(`header is not valid JSON (${(e as Error).message})`, path);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new KvlensInputError('header must be a JSON object', path);
    const dataStart = 8 + headerLength;
    const dataSize = size - dataStart;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    const spans: Array<[number, number, string]> = [];
    for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = parseMetadata(raw, path);
        continue;
      }
      const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const where = `${path}: tensor "${name}"`;
      if (typeof e !== 'object' || e === null) throw new KvlensInputError('entry must be an object', where);
      const dtype = typeof e.dtype === 'string' ? ownValue(ST_TO_DTYPE, e.dtype) : undefined;
      if (!dtype) throw new KvlensInputError(`unsupported dtype ${describeValue(e.dtype)} (expected one of ${Object.keys(ST_TO_DTYPE).join(', ')})`, where);
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        throw new KvlensInputError(`shape must be an array of non-negative integers, got ${describeValue(e.shape)}`, where);
      }
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[1] < off[0]) {
        throw new KvlensInputError(`data_offsets must be [begin, end] with 0 <= begin <= end, got ${describeValue(off)}`, where);
      }
      const [b, en] = off as [number, number];
      const expected = numel(e.shape as number[]) * DTYPE_BYTES[dtype];
      if (en - b !== expected) {
        throw new KvlensInputError(`data_offsets span ${en - b} bytes but ${e.dtype} x [${(e.shape as number[]).slice(0, 8).join(', ')}] needs ${expected}`, where);
      }
      if (en > dataSize) {
        throw new KvlensInputError(`data_offsets end ${en} lies beyond the data section (${dataSize} bytes): the file is truncated or the header lies`, where);
      }
      spans.push([b, en, name]);
      tensors.set(name, { name, dtype, shape: [...(e.shape as number[])], fileOffset: dataStart + b, byteLength: en - b, file: real });
    }
    // Overlap check over the non-empty spans only, against the furthest end so far: an empty tensor placed between
    // two overlapping ones must not reset the comparison.
    const filled = spans.filter(([b, e]) => e > b).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    let reach: [number, number, string] | null = null;
    for (const span of filled) {
      if (reach && span[0] < reach[1]) {
        throw new KvlensInputError(`tensors "${reach[2]}" [${reach[0]}, ${reach[1]}) and "${span[2]}" [${span[0]}, ${span[1]}) overlap in the data section`, path);
      }
      if (!reach || span[1] > reach[1]) reach = span;
    }
    return { file: real, headerLength, dataStart, metadata, tensors };
  } finally {
    closeSync(fd);
  }
}

function parseMetadata(raw: unknown, path: string): Record<string, string> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new KvlensInputError('__metadata__ must be an object of strings', path);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new KvlensInputError(`__metadata__.${k} must be a string`, path);
    out[k] = v;
  }
  return out;
}

/** Read one tensor's bytes into a fresh, aligned typed array. */
export function readTensor(entry: TensorEntry): Tensor {
  const buf = new ArrayBuffer(entry.byteLength);
  const u8 = new Uint8Array(buf);
  const fd = openSync(entry.file, 'r');
  try {
    let done = 0;
    while (done < entry.byteLength) {
      const n = readSync(fd, u8, done, entry.byteLength - done, entry.fileOffset + done);
      if (n <= 0) throw new KvlensInputError(`unexpected end of file while reading tensor "${entry.name}"`, entry.file);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return tensor(entry.dtype, entry.shape, viewAs(entry.dtype, buf) as never);
}

function viewAs(dtype: DType, buf: ArrayBuffer) {
  switch (dtype) {
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
    case 'int64': return new BigInt64Array(buf);
    case 'int32': return new Int32Array(buf);
    case 'int8': return new Int8Array(buf);
    case 'float16':
    case 'bfloat16': return new Uint16Array(buf);
    default: return new Uint8Array(buf);
  }
}

/**
 * Maps a tensor name to the name it is indexed under, applied to the checkpoint's names and to every lookup alike
 * (a model family's layouts, src/models/weight-names.ts). Two checkpoint tensors mapping to one name are refused.
 */
export type WeightKeyMapping = (name: string) => string;

export interface WeightSetOptions {
  readonly keyMapping?: WeightKeyMapping;
}

/**
 * A set of safetensors files viewed as one name -> tensor map: a single `model.safetensors`, or the shards
 * listed in `model.safetensors.index.json`. Works on read-only directories and hub-cache snapshots whose
 * files are symlinks into ../../blobs (entries carry the resolved real path; nothing is copied).
 */
export class WeightSet {
  private readonly byKey: ReadonlyMap<string, TensorEntry>;
  private readonly key: WeightKeyMapping;

  private constructor(readonly dir: string, readonly files: readonly SafetensorsHeader[], private readonly index: ReadonlyMap<string, TensorEntry>, opts: WeightSetOptions, source: string) {
    this.key = opts.keyMapping ?? ((n) => n);
    const byKey = new Map<string, TensorEntry>();
    for (const [name, e] of index) {
      const k = this.key(name);
      const prior = byKey.get(k);
      if (prior) throw new KvlensInputError(`tensors "${prior.name}" and "${name}" are the same weight "${k}" in two layouts; a checkpoint must hold one`, source);
      byKey.set(k, e);
    }
    this.byKey = byKey;
  }

  static open(dir: string, opts: WeightSetOptions = {}): WeightSet {
    const indexPath = join(dir, 'model.safetensors.index.json');
    const single = join(dir, 'model.safetensors');
    if (existsSync(indexPath)) {
      let idx: { weight_map?: Record<string, string> };
      try {
        idx = JSON.parse(readFileSync(indexPath, 'utf8'));
      } catch (e) {
        throw new KvlensInputError(`not valid JSON (${(e as Error).message})`, indexPath);
      }
      if (!idx.weight_map || typeof idx.weight_map !== 'object') throw new KvlensInputError('missing "weight_map"', indexPath);
      const shardNames = [...new Set(Object.values(idx.weight_map))].sort();
      const headers = shardNames.map((s) => readSafetensorsHeader(join(dir, s)));
      const byName = new Map(shardNames.map((s, i) => [s, headers[i]]));
      const all = new Map<string, TensorEntry>();
      for (const [tname, shard] of Object.entries(idx.weight_map)) {
        const h = byName.get(shard)!;
        const e = h.tensors.get(tname);
        if (!e) throw new KvlensInputError(`index says tensor "${tname}" is in ${shard}, but that shard does not contain it`, indexPath);
        all.set(tname, e);
      }
      return new WeightSet(dir, headers, all, opts, indexPath);
    }
    if (existsSync(single)) {
      const h = readSafetensorsHeader(single);
      return new WeightSet(dir, [h], h.tensors, opts, single);
    }
    throw new KvlensInputError('no model.safetensors or model.safetensors.index.json found', dir);
  }

  /** Whether the weight exists under `name` or any spelling of it the key mapping resolves to the same weight. */
  has(name: string): boolean {
    return this.byKey.has(this.key(name));
  }

  /** The tensor names as stored in the checkpoint. */
  names(): string[] {
    return [...this.index.keys()];
  }

  /** Entry of a required weight; the error names the checkpoint and the missing tensor (and its other spelling). */
  entry(name: string): TensorEntry {
    const k = this.key(name);
    const e = this.byKey.get(k);
    if (!e) throw new KvlensInputError(`missing weight "${name}"${k === name ? '' : ` (also looked for "${k}")`}`, this.dir);
    return e;
  }

  /** Entry with its shape checked against what the architecture expects. */
  expect(name: string, shape: readonly number[]): TensorEntry {
    const e = this.entry(name);
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      throw new KvlensInputError(`weight "${e.name}" has shape [${e.shape.join(', ')}], the config implies [${shape.join(', ')}]`, basename(e.file) === e.file ? this.dir : e.file);
    }
    return e;
  }

  read(name: string): Tensor {
    return readTensor(this.entry(name));
  }
}

/** Encode a header (JSON + padding) for tensors laid out back to back; data offsets are aligned to `align` bytes. */
export function layoutSafetensors(
  specs: ReadonlyArray<{ name: string; dtype: DType; shape: readonly number[] }>,
  metadata?: Record<string, string>,
  align = 8,
): { header: Buffer; offsets: number[]; dataBytes: number } {
  const offsets: number[] = [];
  let pos = 0;
  const obj: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) obj.__metadata__ = metadata;
  for (const s of specs) {
    pos = Math.ceil(pos / align) * align;
    const len = numel(s.shape) * DTYPE_BYTES[s.dtype];
    obj[s.name] = { dtype: DTYPE_TO_ST[s.dtype], shape: s.shape, data_offsets: [pos, pos + len] };
    offsets.push(pos);
    pos += len;
  }
  let json = JSON.stringify(obj);
  // Pad the header with spaces so the data section starts on an `align` boundary (allowed by the format).
  const total = 8 + Buffer.byteLength(json);
  const pad = (align - (total % align)) % align;
  json += ' '.repeat(pad);
  const header = Buffer.alloc(8 + Buffer.byteLength(json));
  header.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  header.write(json, 8, 'utf8');
  return { header, offsets, dataBytes: pos };
}

/**
 * Write tensors to a safetensors file atomically: a temp file beside the target, then rename.
 * `align` pads data offsets (4096 lets onnxruntime mmap the weights).
 */
export function writeSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>, align = 8): void {
  const names = Object.keys(tensors);
  const { header, offsets, dataBytes } = layoutSafetensors(names.map((n) => ({ name: n, dtype: tensors[n].dtype, shape: tensors[n].shape })), metadata, align);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, header, 0, header.length, 0);
    names.forEach((n, i) => {
      const d = tensors[n].data;
      const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
      writeSync(fd, bytes, 0, bytes.length, header.length + offsets[i]);
    });
    // Make the file length exact even if the last tensor is empty.
    if (dataBytes > 0) writeSync(fd, new Uint8Array(0), 0, 0, header.length + dataBytes);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* already closed */ }
    if (existsSync(tmp)) unlinkSync(tmp);
    throw e;
  }
}

/** Convenience for tests and the parity tool: read every tensor of a file. */
export function readAllTensors(path: string): Map<string, Tensor> {
  const h = readSafetensorsHeader(path);
  return new Map([...h.tensors].map(([k, e]) => [k, readTensor(e)]));
}
