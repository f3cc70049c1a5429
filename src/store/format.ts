// The on-disk format of a kvlens feature store:
//
//   <store>/manifest.json                  one JSON document: identity (model, processor, prompt, taps, dtype, views),
//                                          sharding policy, the finalised shards and, per image, where it lives
//   <store>/shards/shard-00000.safetensors standard safetensors files; tensor "<imageId>/<tap>/<view>" has shape
//                                          [rows, cols, D] with D = heads x headDim flattened head-major
//
// Everything in manifest.json and the shards is a deterministic function of the ordered image list and the options, so
// a resumed run produces the same bytes as an uninterrupted one. Nothing time-dependent lives here (timings go to an
// optional run log outside the store's identity).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { KvlensInputError } from '../util/errors.js';

export const MANIFEST_FILE = 'manifest.json';
export const SHARDS_DIR = 'shards';
export const LOCK_FILE = '.lock';
export const FORMAT_NAME = 'kvlens-feature-store';
export const FORMAT_VERSION = 1;
/** How tensor names inside shards are built; recorded in the manifest so readers never guess. */
export const TENSOR_NAMING = '{image}/{tap}/{view}';
export const DEFAULT_VIEWS = ['base', 'highres'] as const;
export const DEFAULT_MAX_SHARD_BYTES = 256 * 1024 * 1024;

export type StoreDType = 'float16' | 'float32';

/** Name of tensor holding one image's grid for one tap and view. The view and tap never contain '/', so the id may. */
export function tensorName(imageId: string, tap: string, view: string): string {
  return `${imageId}/${tap}/${view}`;
}

export function shardFileName(index: number): string {
  return `shard-${String(index).padStart(5, '0')}.safetensors`;
}

export const SHARD_FILE_RE = /^shard-(\d{5,})\.safetensors$/;

const int = z.number().int();
/** extent: the fraction of the image (width, height) the view's tokens read (absent in stores written before it = all). */
const ExtentSchema = z.object({ x: z.number().gt(0).max(1), y: z.number().gt(0).max(1) });
const ViewGridSchema = z.object({ rows: int.positive(), cols: int.positive(), extent: ExtentSchema.optional() });
const TapDimsSchema = z.object({ heads: int.positive(), headDim: int.positive(), dim: int.positive() });
const SelectionSchema = z.object({ index: int.nonnegative(), count: int.positive() });

const WeightsSchema = z.object({ method: z.enum(['header', 'content']), files: int.nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
/** The full input list of the run (before sharding): its length and the sha256 of its image ids joined by newlines. */
const ListSchema = z.object({ images: int.nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });

const ImageEntrySchema = z.object({
  id: z.string().min(1),
  source: z.string(),
  originalSize: z.object({ width: int.nonnegative(), height: int.nonnegative() }),
  /** Token grid of each stored view (the token map summary). */
  views: z.record(z.string(), ViewGridSchema),
  /** Index into `shards`. */
  shard: int.nonnegative(),
  /** The image's own prefix text, when the store was extracted with per-image prefixes (prompt.perImage). */
  prefix: z.string().optional(),
});

const ShardEntrySchema = z.object({
  file: z.string().regex(SHARD_FILE_RE),
  bytes: int.nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  images: int.nonnegative(),
});

export const ManifestSchema = z.object({
  format: z.literal(FORMAT_NAME),
  formatVersion: z.literal(FORMAT_VERSION),
  kvlensVersion: z.string(),
  /**
   * weights: sha256 over every *.safetensors file of the model directory (name, size and header bytes; or every byte
   * with method "content"), so a store is never resumed or merged over other weights behind the same config.json.
   */
  model: z.object({ path: z.string(), configSha256: z.string(), weights: WeightsSchema.optional() }),
  /** Processor settings as given by the extractor, keys sorted (canonical JSON). */
  processor: z.record(z.string(), z.unknown()),
  /**
   * template: the prompt as tokenised with `prefix`. perImage (optional): how per-image prefixes were derived (e.g. the
   * experiment's rule); each image entry then records its own `prefix`, which replaces `prefix` for that image.
   */
  prompt: z.object({ template: z.string(), prefix: z.string(), perImage: z.string().optional() }),
  taps: z.array(z.string()).min(1),
  /** Filled from the first image written: per tap, heads x headDim = dim (the last axis of every grid). */
  tapDims: z.record(z.string(), TapDimsSchema),
  dtype: z.enum(['float16', 'float32']),
  views: z.array(z.string().regex(/^[A-Za-z0-9_.-]+$/)).min(1),
  /** Which deterministic subsets of the image list this store holds ([{index: 0, count: 1}] for an unsharded run). */
  selection: z.array(SelectionSchema).min(1),
  /** The list every selection was cut from (null: written through the API without a list, e.g. tests). */
  list: ListSchema.nullable().default(null),
  sharding: z.object({ maxShardBytes: int.positive(), maxImagesPerShard: int.positive().nullable() }),
  tensorNaming: z.literal(TENSOR_NAMING),
  shards: z.array(ShardEntrySchema),
  images: z.array(ImageEntrySchema),
});

export type Manifest = z.infer<typeof ManifestSchema>;
export type ImageEntry = z.infer<typeof ImageEntrySchema>;
export type ShardEntry = z.infer<typeof ShardEntrySchema>;
export type TapDims = z.infer<typeof TapDimsSchema>;
export type ShardSelection = z.infer<typeof SelectionSchema>;
export type WeightsIdentity = z.infer<typeof WeightsSchema>;
export type ListIdentity = z.infer<typeof ListSchema>;

/** What makes two stores (or a store and a new run) compatible: features computed the same way. */
export interface StoreIdentity {
  readonly model: { readonly path: string; readonly configSha256: string; readonly weights?: WeightsIdentity };
  readonly processor: Readonly<Record<string, unknown>>;
  readonly prompt: { readonly template: string; readonly prefix: string; readonly perImage?: string };
  readonly taps: readonly string[];
  readonly dtype: StoreDType;
  readonly views: readonly string[];
}

/** JSON with object keys sorted at every level, so equal settings always give equal bytes. */
export function canonicalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonicalize);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value as object).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = canonicalize(v);
    }
    return out;
  }
  return value;
}

/** Manifest text: top-level fields one per line, and one line per shard and per image (compact for large stores). */
export function serializeManifest(m: Manifest): string {
  const fields = Object.entries(m).map(([k, v]) => {
    const value = Array.isArray(v) && (k === 'shards' || k === 'images')
      ? (v.length ? `[\n${v.map((x) => `  ${JSON.stringify(x)}`).join(',\n')}\n ]` : '[]')
      : JSON.stringify(v);
    return ` ${JSON.stringify(k)}: ${value}`;
  });
  return `{\n${fields.join(',\n')}\n}\n`;
}

export function readManifest(root: string): Manifest {
  const path = join(root, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KvlensInputError(code === 'ENOENT' ? 'not a kvlens feature store (no manifest.json)' : `cannot read manifest (${code ?? (e as Error).message})`, path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new KvlensInputError(`manifest is not valid JSON (${(e as Error).message})`, path);
  }
  const r = ManifestSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new KvlensInputError(`invalid manifest field "${issue.path.join('.')}": ${issue.message}`, path);
  }
  checkManifestConsistency(r.data, path);
  return r.data;
}

/** Cross-field checks zod cannot express: tap dims (heads x headDim = dim), image shard indices in range, per-shard counts, unique ids, known views. */
function checkManifestConsistency(m: Manifest, path: string): void {
  if (m.images.length > 0) {
    const missing = m.taps.filter((t) => !Object.hasOwn(m.tapDims, t));
    if (missing.length) throw new KvlensInputError(`field "tapDims" lacks tap(s) ${missing.slice(0, 5).join(', ')} though the store holds images`, path);
  }
  for (const [tap, d] of Object.entries(m.tapDims)) {
    if (!m.taps.includes(tap)) throw new KvlensInputError(`tapDims names tap "${tap}", which is not among the store's taps`, path);
    if (d.heads * d.headDim !== d.dim) {
      throw new KvlensInputError(`field "tapDims.${tap}": heads x headDim = ${d.heads} x ${d.headDim} must equal dim = ${d.dim}`, path);
    }
  }
  const counts = new Array<number>(m.shards.length).fill(0);
  const seen = new Set<string>();
  for (const img of m.images) {
    if (img.shard >= m.shards.length) throw new KvlensInputError(`image "${img.id}" names shard ${img.shard}, the manifest lists ${m.shards.length}`, path);
    if (seen.has(img.id)) throw new KvlensInputError(`image "${img.id}" is listed twice`, path);
    for (const v of Object.keys(img.views)) {
      if (!m.views.includes(v)) throw new KvlensInputError(`image "${img.id}" has view "${v}", not among the store's views [${m.views.join(', ')}]`, path);
    }
    seen.add(img.id);
    counts[img.shard]++;
  }
  m.shards.forEach((s, i) => {
    if (s.images !== counts[i]) throw new KvlensInputError(`shard ${s.file} says ${s.images} images, the image list places ${counts[i]} there`, path);
  });
}

/** The fields compared between a store and a run (or two stores), in the order they are reported. */
export function identityOf(m: Manifest): StoreIdentity & { kvlensVersion: string } {
  return { kvlensVersion: m.kvlensVersion, model: m.model, processor: m.processor, prompt: m.prompt, taps: m.taps, dtype: m.dtype, views: m.views };
}

/**
 * The first field that differs between two identities, as "field: a vs b", or null when they match.
 * Used to refuse (never silently mix) features computed with another model, prompt, prefix, dtype, taps or version.
 */
export function identityDifference(a: StoreIdentity & { kvlensVersion: string }, b: StoreIdentity & { kvlensVersion: string }): string | null {
  const fields: Array<[string, unknown, unknown]> = [
    ['model.path', a.model.path, b.model.path],
    ['model.configSha256', a.model.configSha256, b.model.configSha256],
    ['model.weights', a.model.weights ?? null, b.model.weights ?? null],
    ['prompt.template', a.prompt.template, b.prompt.template],
    ['prompt.prefix', a.prompt.prefix, b.prompt.prefix],
    ['prompt.perImage', a.prompt.perImage ?? null, b.prompt.perImage ?? null],
    ['taps', a.taps, b.taps],
    ['dtype', a.dtype, b.dtype],
    ['views', a.views, b.views],
    ['processor', canonicalize(a.processor), canonicalize(b.processor)],
    ['kvlensVersion', a.kvlensVersion, b.kvlensVersion],
  ];
  for (const [name, x, y] of fields) {
    const sx = JSON.stringify(x);
    const sy = JSON.stringify(y);
    if (sx !== sy) return `${name} differs: ${clip(sx)} vs ${clip(sy)}`;
  }
  return null;
}

function clip(s: string): string {
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}
