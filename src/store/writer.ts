// The streaming, resumable store writer. The extractor calls, per image in a fixed order:
//
//   if (!writer.has(id)) writer.add(id, record, tensors)   // tensors: Map<tapName, {shape, data}>
//   ...
//   writer.close()
//
// Images fill the open shard until adding the next one would pass maxShardBytes (or maxImagesPerShard is reached);
// then the shard is finalised (temp + rename) and the manifest rewritten atomically. Shard boundaries depend only on
// the ordered images and the options, and `has` is true exactly for images in finalised shards after a restart, so a
// run killed at any moment and started again ends with the same bytes as an uninterrupted run.

import { appendFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { f32ToF16 } from '../tensor/tensor.js';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { removeQuietly, writeFileAtomic } from './atomic.js';
import {
  DEFAULT_MAX_SHARD_BYTES, FORMAT_NAME, FORMAT_VERSION, LOCK_FILE, MANIFEST_FILE, SHARDS_DIR, SHARD_FILE_RE, TENSOR_NAMING,
  canonicalize, identityDifference, identityOf, readManifest, serializeManifest, shardFileName, tensorName,
  type ImageEntry, type ListIdentity, type Manifest, type ShardSelection, type StoreIdentity, type TapDims,
} from './format.js';
import { checkStorableTap, checkViewTokens, gatherGrid, tapLayout, tapViews, type ImageRecord, type TapLayout, type TapTensor } from './gather.js';
import { kvlensVersion } from './provenance.js';
import { StoreLock, type LockOptions } from './lock.js';
import { ShardBuilder } from './shard-file.js';
import { ensureDir } from '../util/dirs.js';

export interface WriterOptions {
  readonly identity: StoreIdentity;
  /** The deterministic subset of the image list this run handles (default: all, {index: 0, count: 1}). */
  readonly selection?: ShardSelection;
  /** The full image list the selection is cut from (size + hash of the ids); merge refuses stores of other lists. */
  readonly list?: ListIdentity;
  /** Finalise a shard before it would pass this many data bytes (default 256 MiB). */
  readonly maxShardBytes?: number;
  /** Also finalise after this many images (default: no limit). */
  readonly maxImagesPerShard?: number | null;
  /** Progress events (for a progress bar, or tests that stop at exact points). */
  readonly onEvent?: (e: WriterEvent) => void;
  /** Append timing lines (JSON) here; keep it outside the store if the store must stay byte-reproducible. */
  readonly runLogPath?: string;
  /** Override the recorded kvlens version (tests); defaults to package.json's. */
  readonly kvlensVersion?: string;
  /** Lease settings of the writer lock (stale time, heartbeat, where take-over warnings go). */
  readonly lock?: LockOptions;
}

export type WriterEvent =
  | { type: 'image-added'; imageId: string; shard: number }
  | { type: 'shard-written'; shard: number; file: string }
  | { type: 'manifest-updated'; shards: number; images: number };

interface OpenShard {
  readonly index: number;
  readonly builder: ShardBuilder;
  readonly images: ImageEntry[];
  readonly ids: Set<string>;
}

/**
 * Why an image id cannot be stored, or null: ids are non-empty and free of control characters (the manifest's image
 * list is hashed one id per line, and ids are printed in messages). Callers check before running the model.
 */
export function imageIdProblem(imageId: string): string | null {
  if (!imageId) return 'an empty image id cannot be stored';
  const m = /[\u0000-\u001f\u007f]/.exec(imageId);
  return m ? `image id ${JSON.stringify(imageId)} cannot be stored: it holds the control character U+${m[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()} (a newline, tab, ...); rename the file` : null;
}

export class StoreWriter {
  private manifest: Manifest;
  private readonly done = new Set<string>();
  private open: OpenShard | undefined;
  private tapDims: Record<string, TapDims>;
  private state: 'open' | 'closed' | 'failed' = 'open';
  private readonly shardsDir: string;

  private constructor(readonly root: string, manifest: Manifest, private readonly opts: WriterOptions, private readonly lock: StoreLock) {
    this.manifest = manifest;
    this.tapDims = { ...manifest.tapDims };
    for (const img of manifest.images) this.done.add(img.id);
    this.shardsDir = join(root, SHARDS_DIR);
  }

  /**
   * Open (or create) a store for writing. An existing store must match the run's identity, selection and sharding:
   * otherwise this throws naming the differing field. Leftovers of a killed run (temp files, a shard renamed before its
   * manifest update) are removed; they are redone.
   */
  static open(root: string, opts: WriterOptions): StoreWriter {
    for (const t of opts.identity.taps) {
      checkStorableTap(t);
      if (tapViews(t, opts.identity.views).length === 0) {
        throw new KvlensUsageError(`tap "${t}" holds none of the store's views [${opts.identity.views.join(', ')}] (siglip.* taps need the "siglip" view, vision.* and projector.out the "base" view)`);
      }
    }
    if (new Set(opts.identity.taps).size !== opts.identity.taps.length) throw new KvlensUsageError('store taps must be unique');
    const fresh = freshManifest(opts);
    refuseOrphanShards(root);
    ensureDir(join(root, SHARDS_DIR));
    const lock = StoreLock.acquire(join(root, LOCK_FILE), opts.lock);
    try {
      const manifestPath = join(root, MANIFEST_FILE);
      let manifest = fresh;
      if (existsSync(manifestPath)) {
        manifest = readManifest(root);
        checkCompatible(manifest, fresh, manifestPath);
      }
      const w = new StoreWriter(root, manifest, opts, lock);
      w.cleanLeftovers();
      if (!existsSync(manifestPath)) w.commit(manifest);
      return w;
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** True when the image is already stored (in a finalised shard, or in this run's open shard). */
  has(imageId: string): boolean {
    return this.done.has(imageId) || (this.open?.ids.has(imageId) ?? false);
  }

  /** Images in finalised shards. */
  get storedImages(): number {
    return this.manifest.images.length;
  }

  /** Add one image: its record (token map per view) and every store tap's whole-sequence tensor. */
  add(imageId: string, record: ImageRecord, tensors: ReadonlyMap<string, TapTensor>): void {
    this.assertOpen();
    const bad = imageIdProblem(imageId);
    if (bad) throw new KvlensUsageError(bad);
    if (this.has(imageId)) throw new KvlensUsageError(`image "${imageId}" is already in the store (check writer.has() first)`);
    const { layouts, views } = this.validate(imageId, record, tensors);
    const elem = this.manifest.dtype === 'float16' ? 2 : 4;
    let imageBytes = 0;
    for (const tap of this.manifest.taps) for (const v of tapViews(tap, views)) imageBytes += record.views[v].rows * record.views[v].cols * layouts.get(tap)!.dim * elem;

    this.lock.heartbeat();
    const maxBytes = this.manifest.sharding.maxShardBytes;
    if (this.open && this.open.images.length > 0 && this.open.builder.dataBytes + imageBytes > maxBytes) this.finaliseOpenShard();
    const shard = this.open ?? this.startShard();
    try {
      for (const tap of this.manifest.taps) {
        const t = tensors.get(tap)!;
        const layout = layouts.get(tap)!;
        for (const v of tapViews(tap, views)) {
          const tokens = record.views[v];
          const grid = gatherGrid(t, layout, tokens); // [rows, cols, D]
          const stored = this.manifest.dtype === 'float16' ? f32ToF16(grid) : grid;
          shard.builder.append(tensorName(imageId, tap, v), [tokens.rows, tokens.cols, layout.dim], new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength));
        }
      }
    } catch (e) {
      this.fail();
      throw e;
    }
    for (const [tap, l] of layouts) this.tapDims[tap] ??= { heads: l.heads, headDim: l.headDim, dim: l.dim };
    shard.images.push({
      id: imageId,
      source: record.source,
      originalSize: { width: record.originalSize.width, height: record.originalSize.height },
      views: Object.fromEntries(views.map((v) => {
        const t = record.views[v];
        return [v, { rows: t.rows, cols: t.cols, ...(t.extent ? { extent: { x: t.extent.x, y: t.extent.y } } : {}) }];
      })),
      shard: shard.index,
      ...(record.prefix !== undefined ? { prefix: record.prefix } : {}),
    });
    shard.ids.add(imageId);
    this.opts.onEvent?.({ type: 'image-added', imageId, shard: shard.index });
    const maxImages = this.manifest.sharding.maxImagesPerShard;
    if (maxImages !== null && shard.images.length >= maxImages) this.finaliseOpenShard();
  }

  /** Finalise the open shard and release the lock. */
  close(): void {
    if (this.state !== 'open') return;
    try {
      if (this.open && this.open.images.length > 0) this.finaliseOpenShard();
      this.open?.builder.discard();
      this.open = undefined;
    } finally {
      if (this.state === 'open') this.state = 'closed';
      this.lock.release();
    }
  }

  /** Drop the open shard (its images are redone by the next run) and release the lock; the store stays valid. */
  abort(): void {
    if (this.state === 'open') this.fail();
  }

  private validate(imageId: string, record: ImageRecord, tensors: ReadonlyMap<string, TapTensor>) {
    const views = this.manifest.views.filter((v) => record.views[v] !== undefined);
    const unknown = Object.keys(record.views).filter((v) => !this.manifest.views.includes(v));
    if (unknown.length) throw new KvlensUsageError(`image "${imageId}": views [${unknown.join(', ')}] are not among the store's [${this.manifest.views.join(', ')}]`);
    if (views.length === 0) throw new KvlensUsageError(`image "${imageId}": the record has none of the store's views [${this.manifest.views.join(', ')}]`);
    const { width, height } = record.originalSize;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) throw new KvlensUsageError(`image "${imageId}": bad original size ${width} x ${height}`);
    const layouts = new Map<string, TapLayout>();
    for (const tap of this.manifest.taps) {
      const t = tensors.get(tap);
      if (!t) throw new KvlensUsageError(`image "${imageId}": tap "${tap}" is missing (the store holds [${this.manifest.taps.join(', ')}])`);
      const l = tapLayout(tap, t);
      const known = this.tapDims[tap];
      if (known && (known.heads !== l.heads || known.headDim !== l.headDim)) {
        throw new KvlensUsageError(`image "${imageId}": tap "${tap}" has ${l.heads} x ${l.headDim}, the store holds ${known.heads} x ${known.headDim}`);
      }
      const held = tapViews(tap, views);
      if (held.length === 0) throw new KvlensUsageError(`image "${imageId}": the record has none of tap "${tap}"'s views [${tapViews(tap, this.manifest.views).join(', ')}]`);
      for (const v of held) checkViewTokens(v, record.views[v], l, tap);
      layouts.set(tap, l);
    }
    return { layouts, views };
  }

  private startShard(): OpenShard {
    const index = this.manifest.shards.length;
    this.open = { index, builder: new ShardBuilder(join(this.shardsDir, shardFileName(index)), this.manifest.dtype), images: [], ids: new Set() };
    return this.open;
  }

  private finaliseOpenShard(): void {
    const shard = this.open!;
    const started = Date.now();
    let written;
    try {
      this.lock.assertHeld(); // nothing becomes visible in the store unless this writer still holds it
      written = shard.builder.finalise({ format: 'pt', 'kvlens.format': `${FORMAT_NAME}/${FORMAT_VERSION}` });
    } catch (e) {
      this.fail();
      throw e;
    }
    const file = shardFileName(shard.index);
    this.opts.onEvent?.({ type: 'shard-written', shard: shard.index, file });
    const next: Manifest = {
      ...this.manifest,
      tapDims: canonicalize(this.tapDims) as Record<string, TapDims>,
      shards: [...this.manifest.shards, { file, bytes: written.bytes, sha256: written.sha256, images: shard.images.length }],
      images: [...this.manifest.images, ...shard.images],
    };
    try {
      this.commit(next);
    } catch (e) {
      this.fail();
      throw e;
    }
    for (const img of shard.images) this.done.add(img.id);
    this.open = undefined;
    this.opts.onEvent?.({ type: 'manifest-updated', shards: next.shards.length, images: next.images.length });
    if (this.opts.runLogPath) {
      appendFileSync(this.opts.runLogPath, `${JSON.stringify({ time: new Date().toISOString(), store: this.root, shard: file, images: shard.images.length, bytes: written.bytes, finaliseMs: Date.now() - started })}\n`);
    }
  }

  private commit(m: Manifest): void {
    this.lock.assertHeld();
    writeFileAtomic(join(this.root, MANIFEST_FILE), serializeManifest(m));
    this.manifest = m;
  }

  /** Remove temp files and shard files the manifest does not list (renamed just before a kill; they are redone). */
  private cleanLeftovers(): void {
    const listed = this.manifest.shards.length;
    for (const name of readdirSync(this.shardsDir)) {
      // Only what a writer of this store makes: its temp files and shards numbered past the manifest's last one.
      const m = SHARD_FILE_RE.exec(name);
      if ((name.startsWith('.shard-') && name.endsWith('.tmp')) || (m && Number(m[1]) >= listed)) removeQuietly(join(this.shardsDir, name));
    }
    removeQuietly(join(this.root, `.${MANIFEST_FILE}.tmp`));
    for (const s of this.manifest.shards) {
      const p = join(this.shardsDir, s.file);
      let size: number;
      try {
        size = statSync(p).size;
      } catch {
        throw new KvlensInputError(`shard listed in the manifest is missing; the store is damaged (restore the file or start a new store)`, p);
      }
      if (size !== s.bytes) throw new KvlensInputError(`shard has ${size} bytes, the manifest says ${s.bytes}; the store is damaged`, p);
    }
  }

  private assertOpen(): void {
    if (this.state === 'closed') throw new KvlensUsageError('store writer is closed');
    if (this.state === 'failed') throw new KvlensUsageError('store writer failed earlier; rerun to resume from the last finalised shard');
  }

  private fail(): void {
    this.state = 'failed';
    this.open?.builder.discard();
    this.open = undefined;
    this.lock.release();
  }
}

function freshManifest(opts: WriterOptions): Manifest {
  const id = opts.identity;
  const maxShardBytes = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  const maxImages = opts.maxImagesPerShard ?? null;
  if (!Number.isInteger(maxShardBytes) || maxShardBytes < 1) throw new KvlensUsageError(`maxShardBytes must be a positive integer, got ${maxShardBytes}`);
  if (maxImages !== null && (!Number.isInteger(maxImages) || maxImages < 1)) throw new KvlensUsageError(`maxImagesPerShard must be a positive integer, got ${maxImages}`);
  const sel = opts.selection ?? { index: 0, count: 1 };
  if (!Number.isInteger(sel.index) || !Number.isInteger(sel.count) || sel.index < 0 || sel.index >= sel.count) {
    throw new KvlensUsageError(`shard selection ${sel.index}/${sel.count} is out of range`);
  }
  return {
    format: FORMAT_NAME,
    formatVersion: FORMAT_VERSION,
    kvlensVersion: opts.kvlensVersion ?? kvlensVersion(),
    model: { path: id.model.path, configSha256: id.model.configSha256, ...(id.model.weights ? { weights: { ...id.model.weights } } : {}) },
    processor: canonicalize(id.processor) as Record<string, unknown>,
    prompt: { template: id.prompt.template, prefix: id.prompt.prefix, ...(id.prompt.perImage !== undefined ? { perImage: id.prompt.perImage } : {}) },
    taps: [...id.taps],
    tapDims: {},
    dtype: id.dtype,
    views: [...id.views],
    selection: [{ index: sel.index, count: sel.count }],
    list: opts.list ? { images: opts.list.images, sha256: opts.list.sha256 } : null,
    sharding: { maxShardBytes, maxImagesPerShard: maxImages },
    tensorNaming: TENSOR_NAMING,
    shards: [],
    images: [],
  };
}

/** Refuse to continue a store with a run that would compute or lay out features differently. */
function checkCompatible(existing: Manifest, run: Manifest, where: string): void {
  const diff = identityDifference(identityOf(existing), identityOf(run));
  const refuse = (what: string) => new KvlensInputError(`refusing to add to this store: ${what}. Use a new store directory for different settings`, where);
  if (diff) throw refuse(diff);
  if (JSON.stringify(existing.selection) !== JSON.stringify(run.selection)) {
    throw refuse(`selection differs: ${fmtSel(existing.selection)} vs ${fmtSel(run.selection)}`);
  }
  if (JSON.stringify(existing.list) !== JSON.stringify(run.list)) {
    throw refuse(`the image list differs (list: ${fmtList(existing.list)} when the store was started vs ${fmtList(run.list)} now); ` +
      'a shard of a changed list would leave images in no shard or in two');
  }
  if (JSON.stringify(existing.sharding) !== JSON.stringify(run.sharding)) {
    throw refuse(`sharding differs: ${JSON.stringify(existing.sharding)} vs ${JSON.stringify(run.sharding)}`);
  }
}

function fmtList(l: ListIdentity | null): string {
  return l ? `${l.images} images, sha256 ${l.sha256.slice(0, 12)}` : 'none recorded';
}

/**
 * A directory with shard files but no manifest is not ours to clean: its manifest was lost or it is another tool's.
 * Refuse rather than delete what we did not create.
 */
function refuseOrphanShards(root: string): void {
  if (existsSync(join(root, MANIFEST_FILE))) return;
  let names: string[];
  try {
    names = readdirSync(join(root, SHARDS_DIR));
  } catch {
    return; // no shards/ directory: a new store
  }
  if (names.length === 0) return;
  const shards = names.filter((n) => SHARD_FILE_RE.test(n));
  throw new KvlensInputError(`this directory has no ${MANIFEST_FILE} but ${SHARDS_DIR}/ holds ${names.length} files ` +
    `(${shards.length} shard files${shards.length ? `: ${shards.slice(0, 3).join(', ')}${shards.length > 3 ? ', ...' : ''}` : ''}); ` +
    'refusing to write here: restore the manifest, or choose a new --out', root);
}

function fmtSel(s: readonly ShardSelection[]): string {
  return s.map((x) => `${x.index}/${x.count}`).join(',');
}
