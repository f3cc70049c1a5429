// Merge the stores of a sharded run (or any stores with one identity) into one store. Shard files are copied
// byte-for-byte under new sequential names; the output appears only when complete (built in a temp directory, renamed).

import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { diskError, moveAtomic, writeFileAtomic } from './atomic.js';
import {
  LOCK_FILE, MANIFEST_FILE, SHARDS_DIR, canonicalize, identityDifference, identityOf, readManifest, serializeManifest, shardFileName,
  type ImageEntry, type Manifest, type ShardEntry, type ShardSelection, type TapDims,
} from './format.js';

export interface MergeResult {
  readonly images: number;
  readonly shards: number;
  /** Shards i/n of the run that no input holds (empty when the inputs cover the whole image list). */
  readonly missing: string[];
}

export function mergeStores(out: string, inputs: readonly string[]): MergeResult {
  if (inputs.length === 0) throw new KvlensUsageError('store merge: give at least one input store');
  const outDir = resolve(out);
  const roots = inputs.map((r) => resolve(r));
  if (roots.includes(outDir)) throw new KvlensUsageError(`store merge: the output ${outDir} is also an input`);
  if (existsSync(outDir) && (!statSync(outDir).isDirectory() || readdirSync(outDir).length > 0)) {
    throw new KvlensInputError('output exists and is not an empty directory; merge writes a new store', outDir);
  }
  const manifests = roots.map((r) => {
    if (existsSync(join(r, LOCK_FILE))) throw new KvlensInputError(`a writer is running on this store or was killed; finish (rerun) it before merging`, join(r, LOCK_FILE));
    return readManifest(r);
  });
  const merged = mergeManifests(roots, manifests);

  const tmp = join(dirname(outDir), `.${basename(outDir)}.merge.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, SHARDS_DIR), { recursive: true });
  try {
    let next = 0;
    manifests.forEach((m, i) => {
      for (const s of m.shards) {
        const src = join(roots[i], SHARDS_DIR, s.file);
        const dst = join(tmp, SHARDS_DIR, shardFileName(next++));
        try {
          copyFileSync(src, dst);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'EACCES') throw new KvlensInputError(`cannot read shard (${code})`, src);
          throw diskError(e, dst);
        }
        const size = statSync(dst).size;
        if (size !== s.bytes) throw new KvlensInputError(`shard has ${size} bytes, its manifest says ${s.bytes}`, src);
      }
    });
    writeFileAtomic(join(tmp, MANIFEST_FILE), serializeManifest(merged));
    if (existsSync(outDir)) rmdirSync(outDir);
    moveAtomic(tmp, outDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { images: merged.images.length, shards: merged.shards.length, missing: missingParts(merged.selection) };
}

/** One manifest for the inputs in order; throws naming the input and the field when identities differ. */
export function mergeManifests(roots: readonly string[], manifests: readonly Manifest[]): Manifest {
  const first = manifests[0];
  const tapDims: Record<string, TapDims> = {};
  const shards: ShardEntry[] = [];
  const images: ImageEntry[] = [];
  const seen = new Map<string, string>();
  const selection: ShardSelection[] = [];
  manifests.forEach((m, i) => {
    const diff = identityDifference(identityOf(first), identityOf(m));
    if (diff) throw new KvlensInputError(`cannot merge with ${roots[0]}: ${diff}`, roots[i]);
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
    for (const s of m.selection) {
      if (selection.some((x) => x.index === s.index && x.count === s.count)) throw new KvlensInputError(`selection ${s.index}/${s.count} is held by two inputs`, roots[i]);
      selection.push(s);
    }
  });
  selection.sort((a, b) => a.count - b.count || a.index - b.index);
  return { ...first, tapDims: canonicalize(tapDims) as Record<string, TapDims>, selection, shards, images };
}

/** For selections of one run (all i/n with one n): the parts not present, as "i/n". Mixed counts cannot be checked. */
export function missingParts(selection: readonly ShardSelection[]): string[] {
  const counts = new Set(selection.map((s) => s.count));
  if (counts.size !== 1) return [];
  const n = selection[0].count;
  const have = new Set(selection.map((s) => s.index));
  return Array.from({ length: n }, (_, i) => i).filter((i) => !have.has(i)).map((i) => `${i}/${n}`);
}
