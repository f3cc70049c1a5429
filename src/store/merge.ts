// Merge the stores of a sharded run into one store. Inputs must be shards of one run: one identity (model and weights,
// processor, prompt, taps, dtype, views, version), one image list (size + hash) and one shard count; they are ordered by
// shard index (not by the order given, so `store-10` never lands before `store-2`). Each shard file is copied while
// its sha256 is checked against its manifest; the output appears only when complete (built in a temp directory,
// renamed). An incomplete set is refused unless allowPartial, and a partial result says so in its selection.

import { closeSync, existsSync, openSync, readSync, readdirSync, rmSync, rmdirSync, statSync, fsyncSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { reportProgress } from '../util/progress.js';
import { closeQuietly, diskError, moveAtomic, writeFileAtomic, writeFully } from './atomic.js';
import {
  LOCK_FILE, MANIFEST_FILE, SHARDS_DIR, canonicalize, identityDifference, identityOf, readManifest, serializeManifest, shardFileName,
  type ImageEntry, type ListIdentity, type Manifest, type ShardEntry, type ShardSelection, type TapDims,
} from './format.js';
import { missingParts, shardRange, shortfall } from './selection.js';
import { ensureDir } from '../util/dirs.js';

export interface MergeOptions {
  /** Write the merge even when shards of the run are missing; the result's selection then lacks them (partial). */
  readonly allowPartial?: boolean;
}

export interface MergeResult {
  readonly images: number;
  readonly shards: number;
  /** Shards i/n of the run that no input holds, and inputs short of images (non-empty only with allowPartial). */
  readonly missing: string[];
  /** The inputs in the order they were merged (by shard index). */
  readonly order: string[];
}

export function mergeStores(out: string, inputs: readonly string[], opts: MergeOptions = {}): MergeResult {
  if (inputs.length === 0) throw new KvlensUsageError('store merge: give at least one input store');
  const outDir = resolve(out);
  const given = inputs.map((r) => resolve(r));
  if (given.includes(outDir)) throw new KvlensUsageError(`store merge: the output ${outDir} is also an input`);
  if (existsSync(outDir) && (!statSync(outDir).isDirectory() || readdirSync(outDir).length > 0)) {
    throw new KvlensInputError('output exists and is not an empty directory; merge writes a new store', outDir);
  }
  const loaded = given.map((root) => {
    if (existsSync(join(root, LOCK_FILE))) throw new KvlensInputError(`a writer is running on this store or was killed; finish (rerun) it before merging`, join(root, LOCK_FILE));
    return { root, manifest: readManifest(root) };
  });
  loaded.sort((a, b) => firstIndex(a.manifest) - firstIndex(b.manifest));
  const roots = loaded.map((l) => l.root);
  const manifests = loaded.map((l) => l.manifest);
  const merged = mergeManifests(roots, manifests);
  const short = manifests.map((m, i) => {
    const s = shortfall(m.selection, m.list, m.images.length);
    return s && `${roots[i]}: ${s}`;
  }).filter((s): s is string => s !== null);
  if (short.length && !opts.allowPartial) {
    throw new KvlensInputError(`incomplete input: ${short.join('; ')}. Or pass --allow-partial to write a store marked partial`, roots[0]);
  }
  const missing = [...missingParts(merged.selection), ...short];
  // A complete set holds the whole list: record it as one (0/1), so a merged store equals an unsharded run's manifest.
  const result: Manifest = missing.length || !merged.list ? merged : { ...merged, selection: [{ index: 0, count: 1 }] };
  if (missing.length && !opts.allowPartial) {
    throw new KvlensInputError(`incomplete set: shards ${missing.join(', ')} of the run are not among the inputs (${describeImages(missing, merged.list)}); ` +
      'finish those tasks and merge again, or pass --allow-partial to write a store marked partial', roots[0]);
  }

  const tmp = join(dirname(outDir), `.${basename(outDir)}.merge.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  ensureDir(join(tmp, SHARDS_DIR));
  try {
    let next = 0;
    // Progress in MiB copied (KiB for small stores; shards can be GBs each): count/total, rate and ETA through the
    // command's progress sink.
    const bytes = manifests.reduce((a, m) => a + m.shards.reduce((b, s) => b + s.bytes, 0), 0);
    const [size, unit] = bytes >= 64 * 2 ** 20 ? [2 ** 20, 'MiB'] : [1024, 'KiB'];
    const total = Math.max(1, Math.ceil(bytes / size));
    let copied = 0;
    const tick = (n: number) => {
      copied += n;
      reportProgress({ step: 'merge', done: Math.min(total - 1, Math.floor(copied / size)), total, unit });
    };
    reportProgress({ step: 'merge', done: 0, total, unit });
    manifests.forEach((m, i) => {
      for (const s of m.shards) copyVerified(join(roots[i], SHARDS_DIR, s.file), join(tmp, SHARDS_DIR, shardFileName(next++)), s, tick);
    });
    reportProgress({ step: 'merge', done: total, total, unit });
    writeFileAtomic(join(tmp, MANIFEST_FILE), serializeManifest(result));
    if (existsSync(outDir)) rmdirSync(outDir);
    moveAtomic(tmp, outDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { images: merged.images.length, shards: merged.shards.length, missing, order: roots };
}

function firstIndex(m: Manifest): number {
  return Math.min(...m.selection.map((s) => s.index));
}

/** Copy one shard in chunks, hashing what is read; a size or sha256 other than the manifest's refuses the merge. */
function copyVerified(src: string, dst: string, entry: ShardEntry, onBytes?: (n: number) => void): void {
  let inFd: number | undefined;
  let outFd: number | undefined;
  const hash = createHash('sha256');
  let size = 0;
  try {
    try {
      inFd = openSync(src, 'r');
    } catch (e) {
      throw new KvlensInputError(`cannot read shard (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, src);
    }
    try {
      outFd = openSync(dst, 'w');
    } catch (e) {
      throw diskError(e, dst);
    }
    const buf = Buffer.allocUnsafe(Math.min(8 * 1024 * 1024, Math.max(1, entry.bytes)));
    for (;;) {
      const n = readSync(inFd, buf, 0, buf.length, size);
      if (n <= 0) break;
      const chunk = buf.subarray(0, n);
      hash.update(chunk);
      try {
        writeFully(outFd, chunk, size);
      } catch (e) {
        throw diskError(e, dst);
      }
      size += n;
      onBytes?.(n);
      if (size > entry.bytes) break; // longer than recorded: refused below without copying the rest
    }
    fsyncSync(outFd);
  } finally {
    if (inFd !== undefined) closeQuietly(inFd);
    if (outFd !== undefined) closeSync(outFd);
  }
  if (size !== entry.bytes) throw new KvlensInputError(`shard has ${size > entry.bytes ? 'more than ' : ''}${size} bytes, its manifest says ${entry.bytes}; the store is damaged`, src);
  const digest = hash.digest('hex');
  if (digest !== entry.sha256) throw new KvlensInputError(`shard content does not match its manifest (sha256 ${digest} vs ${entry.sha256}); the store is damaged`, src);
}

/**
 * One manifest for the inputs in the given order; throws naming the input and the field when they are not shards of one
 * run (identity, image list, shard count), when an image or a shard index is held twice, or when tap shapes differ.
 */
export function mergeManifests(roots: readonly string[], manifests: readonly Manifest[]): Manifest {
  const first = manifests[0];
  const tapDims: Record<string, TapDims> = {};
  const shards: ShardEntry[] = [];
  const images: ImageEntry[] = [];
  const seen = new Map<string, string>();
  const selection: ShardSelection[] = [];
  const count = first.selection[0].count;
  manifests.forEach((m, i) => {
    const diff = identityDifference(identityOf(first), identityOf(m));
    if (diff) throw new KvlensInputError(`cannot merge with ${roots[0]}: ${diff}`, roots[i]);
    if (JSON.stringify(m.list) !== JSON.stringify(first.list)) {
      throw new KvlensInputError(`cannot merge with ${roots[0]}: field "list" differs (${fmtList(m.list)} vs ${fmtList(first.list)}): ` +
        'the shards were cut from different image lists, so images could be in no shard or in two', roots[i]);
    }
    for (const s of m.selection) {
      if (s.count !== count) {
        throw new KvlensInputError(`cannot merge with ${roots[0]}: field "selection" has shard ${s.index}/${s.count}, ${roots[0]} is a shard of ${count}; ` +
          'shards of different shard counts do not partition the list', roots[i]);
      }
      const holder = selection.findIndex((x) => x.index === s.index);
      if (holder >= 0) throw new KvlensInputError(`field "selection": shard ${s.index}/${s.count} is also held by another input`, roots[i]);
      selection.push(s);
    }
    for (const [tap, d] of Object.entries(m.tapDims)) {
      const known = tapDims[tap];
      if (known && (known.heads !== d.heads || known.headDim !== d.headDim)) throw new KvlensInputError(`tap "${tap}" is ${d.heads} x ${d.headDim}, an earlier input has ${known.heads} x ${known.headDim}`, roots[i]);
      tapDims[tap] = d;
    }
    const offset = shards.length;
    m.shards.forEach((s, k) => shards.push({ ...s, file: shardFileName(offset + k) }));
    for (const img of m.images) {
      const prev = seen.get(img.id);
      if (prev !== undefined) throw new KvlensInputError(`image "${img.id}" is also in ${prev}; shard stores must not overlap`, roots[i]);
      seen.set(img.id, roots[i]);
      images.push({ ...img, shard: img.shard + offset });
    }
  });
  selection.sort((a, b) => a.count - b.count || a.index - b.index);
  return { ...first, tapDims: canonicalize(tapDims) as Record<string, TapDims>, selection, shards, images };
}

function fmtList(l: ListIdentity | null): string {
  return l ? `${l.images} images, sha256 ${l.sha256.slice(0, 12)}` : 'no list recorded';
}

/** "12 of 40 images" for missing i/n parts when the list size is known. */
function describeImages(missing: readonly string[], list: ListIdentity | null): string {
  if (!list) return 'image count unknown: no list recorded';
  let n = 0;
  for (const m of missing) {
    const [i, c] = m.split('/').map(Number);
    const [b, e] = shardRange(list.images, { index: i, count: c });
    n += e - b;
  }
  return `${n} of ${list.images} images`;
}
