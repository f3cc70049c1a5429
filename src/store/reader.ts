// Reading a feature store (or several shard stores of one run, read together). Only the requested tensors' byte
// ranges are read, with positioned reads, so iterating one layer over every image never touches the other layers and
// memory stays proportional to what is asked.

import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseHook } from '../taps/names.js';
import { tapViews } from './gather.js';
import { readSafetensorsHeader, type SafetensorsHeader } from '../tensor/safetensors.js';
import { halfToFloat } from '../tensor/tensor.js';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import {
  LOCK_FILE, SHARDS_DIR, identityDifference, identityOf, readManifest, tensorName,
  type ImageEntry, type Manifest, type ShardEntry, type StoreIdentity, type TapDims,
} from './format.js';
import { missingParts, shortfall } from './selection.js';
import { hashWhole } from './provenance.js';

/** One image's grid for one tap and view: data is [rows, cols, dim] (dim = headDim when one head was asked). */
export interface Grid {
  readonly rows: number;
  readonly cols: number;
  readonly dim: number;
  readonly data: Float32Array;
}

export interface ReadOptions {
  /** Default: the tap's first view ("base"; "siglip" for the SigLIP baseline's taps). */
  readonly view?: string;
  /** Only this head's slice of D: [rows, cols, headDim]. */
  readonly head?: number;
}

export interface StoredImage {
  readonly id: string;
  readonly source: string;
  readonly originalSize: { readonly width: number; readonly height: number };
  /** extent: the fraction of the image the view's tokens read (absent: the whole image, or a store written before it). */
  readonly views: Readonly<Record<string, { readonly rows: number; readonly cols: number; readonly extent?: { readonly x: number; readonly y: number } }>>;
  /** The image's own prefix text (stores extracted with per-image prefixes only). */
  readonly prefix?: string;
  /** The store root and shard file that hold it. */
  readonly root: string;
  readonly shardFile: string;
}

interface Located {
  readonly image: ImageEntry;
  readonly root: string;
  readonly shard: ShardEntry;
}

let f16Table: Float32Array | undefined;
/** All 65536 half values as float32: decoding is then one table lookup per element. */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = halfToFloat(h);
  }
  return f16Table;
}

export class FeatureStore {
  /** Identity shared by every root (model, processor, prompt, taps, dtype, views, kvlens version). */
  readonly identity: StoreIdentity & { kvlensVersion: string };
  readonly roots: readonly string[];
  readonly manifests: readonly Manifest[];
  private readonly index = new Map<string, Located>();
  private readonly order: string[] = [];
  private readonly dims: Record<string, TapDims> = {};
  private readonly headers = new Map<string, SafetensorsHeader>();
  private readonly fds = new Map<string, number>();
  private scratch = Buffer.alloc(0);

  private constructor(roots: string[], manifests: Manifest[]) {
    this.roots = roots;
    this.manifests = manifests;
    this.identity = identityOf(manifests[0]);
    manifests.forEach((m, i) => {
      const diff = identityDifference(this.identity, identityOf(m));
      if (diff) throw new KvlensInputError(`cannot read together with ${roots[0]}: ${diff}`, roots[i]);
      for (const [tap, d] of Object.entries(m.tapDims)) {
        const known = this.dims[tap];
        if (known && (known.heads !== d.heads || known.headDim !== d.headDim)) {
          throw new KvlensInputError(`tap "${tap}" is ${d.heads} x ${d.headDim} here but ${known.heads} x ${known.headDim} in ${roots[0]}`, roots[i]);
        }
        this.dims[tap] = d;
      }
      for (const image of m.images) {
        const prev = this.index.get(image.id);
        if (prev) throw new KvlensInputError(`image "${image.id}" is stored twice (also in ${prev.root})`, roots[i]);
        this.index.set(image.id, { image, root: roots[i], shard: m.shards[image.shard] });
        this.order.push(image.id);
      }
    });
  }

  /** Open one store, or several stores of one run (e.g. the shards of a job array) as one. */
  static open(roots: string | readonly string[]): FeatureStore {
    const list = (typeof roots === 'string' ? [roots] : [...roots]).map((r) => resolve(r));
    if (list.length === 0) throw new KvlensUsageError('FeatureStore.open: no store given');
    return new FeatureStore(list, list.map((r) => readManifest(r)));
  }

  get taps(): readonly string[] {
    return this.identity.taps;
  }

  get views(): readonly string[] {
    return this.identity.views;
  }

  get dtype(): 'float16' | 'float32' {
    return this.identity.dtype;
  }

  /** Image ids in store order (root order, then shard order, then insertion order). */
  images(): string[] {
    return [...this.order];
  }

  has(imageId: string): boolean {
    return this.index.has(imageId);
  }

  image(imageId: string): StoredImage {
    const l = this.locate(imageId);
    return { ...l.image, root: l.root, shardFile: join(l.root, SHARDS_DIR, l.shard.file) };
  }

  /** heads x headDim = dim of a tap (known once an image is stored). */
  tapDims(tap: string): TapDims {
    if (!this.identity.taps.includes(tap)) throw new KvlensUsageError(`tap "${tap}" is not in this store; it holds [${this.identity.taps.join(', ')}]`);
    const d = this.dims[tap];
    if (!d) throw new KvlensUsageError(`tap "${tap}": the store holds no images yet`);
    return d;
  }

  /** Layers stored for a layered tap kind, e.g. layers('attn.v') -> [0, 1, ...] for lm.{L}.attn.v. */
  layers(kind = 'attn.v'): number[] {
    const out: number[] = [];
    if (kind.startsWith('lm.')) kind = kind.slice(3);
    for (const t of this.identity.taps) {
      const h = parseHook(t);
      if ('layer' in h && h.kind === `lm.${kind}`) out.push(h.layer);
    }
    return out.sort((a, b) => a - b);
  }

  /** One image's grid for `tap`: [rows, cols, dim] as float32 (f16 stores are widened exactly). */
  /**
   * The pixel extent of an image's view as recorded at extraction (the view `read` would use for `tap` when none is
   * given); undefined for a store written before extents were recorded, or a view that reads the whole image.
   */
  extent(imageId: string, tap: string, view?: string): { x: number; y: number } | undefined {
    const l = this.locate(imageId);
    const v = view ?? tapViews(tap, this.identity.views)[0];
    const e = l.image.views[v]?.extent;
    return e ? { x: e.x, y: e.y } : undefined;
  }

  read(imageId: string, tap: string, opts: ReadOptions = {}): Grid {
    return this.readLocated(this.locate(imageId), tap, opts);
  }

  /** Iterate a tap over images (default: all, store order), reading only that tap's byte ranges. */
  *iterate(tap: string, opts: ReadOptions & { images?: readonly string[] } = {}): Generator<{ imageId: string; grid: Grid }> {
    for (const imageId of opts.images ?? this.order) yield { imageId, grid: this.read(imageId, tap, opts) };
  }

  /**
   * Check every shard: present, the size the manifest records, a valid header holding every expected tensor with the
   * expected shape and dtype; with `hashes`, also the sha256 of its bytes. Returns the problems found (empty: healthy).
   */
  verify(opts: { hashes?: boolean } = {}): string[] {
    const problems: string[] = [...this.coverageProblems()];
    this.manifests.forEach((m, i) => {
      const root = this.roots[i];
      if (existsSync(join(root, LOCK_FILE))) problems.push(`${join(root, LOCK_FILE)}: a writer is running or was killed; the store may be incomplete`);
      m.shards.forEach((s, si) => {
        const file = join(root, SHARDS_DIR, s.file);
        try {
          const size = fileSize(file);
          if (size !== s.bytes) problems.push(`${file}: ${size} bytes, the manifest says ${s.bytes}`);
          const h = this.header(file);
          const end = [...h.tensors.values()].reduce((a, e) => Math.max(a, e.fileOffset + e.byteLength), h.dataStart);
          if (end !== size) problems.push(`${file}: header + data end at byte ${end} but the file has ${size} (trailing bytes)`);
          for (const img of m.images) {
            if (img.shard !== si) continue;
            for (const tap of m.taps) {
              for (const view of tapViews(tap, Object.keys(img.views))) {
                const g = img.views[view];
                const name = tensorName(img.id, tap, view);
                const e = h.tensors.get(name);
                const dim = m.tapDims[tap]?.dim;
                if (!e) problems.push(`${file}: tensor "${name}" is missing`);
                else if (e.dtype !== m.dtype || e.shape.join(',') !== [g.rows, g.cols, dim].join(',')) {
                  problems.push(`${file}: tensor "${name}" is ${e.dtype} [${e.shape.join(', ')}], expected ${m.dtype} [${g.rows}, ${g.cols}, ${dim}]`);
                }
              }
            }
          }
          if (opts.hashes) {
            const digest = hashWhole(file).toString('hex');
            if (digest !== s.sha256) problems.push(`${file}: sha256 ${digest} differs from the manifest's ${s.sha256}`);
          }
        } catch (e) {
          problems.push(e instanceof KvlensInputError ? e.message : `${file}: ${(e as Error).message}`);
        }
      });
    });
    return problems;
  }

  /** The shards of the run that none of the roots hold, as "i/n" (or uncovered image ranges); empty when complete. */
  missing(): string[] {
    const lists = new Set(this.manifests.map((m) => JSON.stringify(m.list)));
    const short = this.manifests.map((m, i) => {
      const s = shortfall(m.selection, m.list, m.images.length);
      return s && (this.roots.length > 1 ? `${this.roots[i]}: ${s}` : s);
    }).filter((s): s is string => s !== null);
    return [...missingParts(this.manifests.flatMap((m) => m.selection), lists.size === 1 ? this.manifests[0].list : null), ...short];
  }

  /** Partial data and mixed image lists: reasons the store does not hold the whole run. */
  coverageProblems(): string[] {
    const problems: string[] = [];
    const lists = new Set(this.manifests.map((m) => JSON.stringify(m.list)));
    if (lists.size > 1) problems.push(`the roots were cut from different image lists (field "list" differs between ${this.roots.join(', ')})`);
    const missing = this.missing();
    if (missing.length) problems.push(`partial: ${missing.join(', ')} of the run ${missing.length === 1 ? 'is' : 'are'} not in this store`);
    return problems;
  }

  /** Cheap check for plain `store info`: every shard present with the size its manifest records. */
  checkSizes(): string[] {
    const problems: string[] = [];
    this.manifests.forEach((m, i) => {
      for (const s of m.shards) {
        const file = join(this.roots[i], SHARDS_DIR, s.file);
        try {
          const size = fileSize(file);
          if (size !== s.bytes) problems.push(`${file}: ${size} bytes, the manifest says ${s.bytes}`);
        } catch (e) {
          problems.push((e as Error).message);
        }
      }
    });
    return problems;
  }

  /** Close the open shard files. */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    this.headers.clear();
    this.scratch = Buffer.alloc(0);
  }

  private locate(imageId: string): Located {
    const l = this.index.get(imageId);
    if (!l) throw new KvlensUsageError(`image "${imageId}" is not in the store (${this.order.length} images in ${this.roots.join(', ')})`);
    return l;
  }

  private readLocated(l: Located, tap: string, opts: ReadOptions): Grid {
    const dims = this.tapDims(tap);
    const held = tapViews(tap, this.identity.views);
    const view = opts.view ?? held[0];
    if (!held.includes(view)) throw new KvlensUsageError(`tap "${tap}" is stored for views [${held.join(', ')}], not "${view}"`);
    const g = l.image.views[view];
    if (!g) throw new KvlensUsageError(`image "${l.image.id}" has no view "${view}"; it has [${Object.keys(l.image.views).join(', ')}]`);
    if (opts.head !== undefined && (!Number.isInteger(opts.head) || opts.head < 0 || opts.head >= dims.heads)) {
      throw new KvlensUsageError(`tap "${tap}": head ${opts.head} is outside 0..${dims.heads - 1}`);
    }
    const file = join(l.root, SHARDS_DIR, l.shard.file);
    const name = tensorName(l.image.id, tap, view);
    const entry = this.header(file).tensors.get(name);
    if (!entry) throw new KvlensInputError(`tensor "${name}" is missing from the shard`, file);
    if (entry.shape.length !== 3 || entry.shape[0] !== g.rows || entry.shape[1] !== g.cols || entry.shape[2] !== dims.dim || entry.dtype !== this.dtype) {
      throw new KvlensInputError(`tensor "${name}" is ${entry.dtype} [${entry.shape.join(', ')}], the manifest implies ${this.dtype} [${g.rows}, ${g.cols}, ${dims.dim}]`, file);
    }
    const bytes = this.readBytes(file, entry.fileOffset, entry.byteLength);
    const cells = g.rows * g.cols;
    const width = opts.head === undefined ? dims.dim : dims.headDim;
    const start = opts.head === undefined ? 0 : opts.head * dims.headDim;
    const out = new Float32Array(cells * width);
    if (this.dtype === 'float16') {
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
      const table = halfTable();
      for (let c = 0; c < cells; c++) {
        const base = c * dims.dim + start;
        for (let j = 0; j < width; j++) out[c * width + j] = table[src[base + j]];
      }
    } else {
      const src = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      if (width === dims.dim) out.set(src);
      else for (let c = 0; c < cells; c++) out.set(src.subarray(c * dims.dim + start, c * dims.dim + start + width), c * width);
    }
    return { rows: g.rows, cols: g.cols, dim: width, data: out };
  }

  private header(file: string): SafetensorsHeader {
    let h = this.headers.get(file);
    if (!h) {
      h = readSafetensorsHeader(file);
      this.headers.set(file, h);
    }
    return h;
  }

  /** Positioned read into a reused, 4-byte-aligned scratch buffer (valid until the next read). */
  private readBytes(file: string, offset: number, length: number): Buffer {
    if (this.scratch.length < length) this.scratch = Buffer.from(new ArrayBuffer(Math.max(length, this.scratch.length * 2)));
    let fd = this.fds.get(file);
    if (fd === undefined) {
      try {
        fd = openSync(file, 'r');
      } catch (e) {
        throw new KvlensInputError(`cannot open shard (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
      }
      this.fds.set(file, fd);
    }
    for (let done = 0; done < length;) {
      const n = readSync(fd, this.scratch, done, length - done, offset + done);
      if (n <= 0) throw new KvlensInputError(`unexpected end of file at byte ${offset + done}`, file);
      done += n;
    }
    return this.scratch.subarray(0, length);
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch (e) {
    throw new KvlensInputError(`shard is unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
}
