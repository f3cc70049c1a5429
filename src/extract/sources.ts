// The ordered image list of an extraction run, with stable ids:
//   a directory   every image file below it (by extension), sorted by relative path; id = the relative path ("a/b.jpg")
//   a list file   one path per line (blank lines and "#" comments skipped), relative to the list's folder unless
//                 absolute; id = the path as written (normalised to "/")
//   a dataset     "dataset:<name>:<root>[?split=val&fold=0&subset=...]" via src/data loaders; id = the image path
//                 relative to <root> (or the parquet struct name); an image used by several samples is listed once
// Only paths are listed here; pixels are decoded per image when the extractor reaches it.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { iterateDataset, isDatasetName, DATASET_NAMES, type GenericDatasetOptions, type ImageSource } from '../data/index.js';
import { readFile } from 'node:fs/promises';
import { decodeBmp } from '../data/bmp.js';
import { decodeImage, type RgbImage } from '../preprocess/image.js';
import { KvlensInputError } from '../util/errors.js';

export interface ImageItem {
  /** Stable id (the store's key). */
  readonly id: string;
  /** Where it comes from, for the store record and messages. */
  readonly source: string;
  readonly load: () => Promise<RgbImage>;
  /** This image's own prefix text (replaces the config's prefix; needs config.perImagePrefix; recorded per image in the store). */
  readonly prefix?: string;
}

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.bmp'];

/** Decode by content: the preprocess decoders (PIL-exact), plus uncompressed BMP (MSRC ships its images as BMP). */
export function decodeAny(bytes: Uint8Array, name: string): Promise<RgbImage> {
  if (bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d) return Promise.resolve(decodeBmp(bytes, name));
  return decodeImage(bytes, name);
}

async function loadAny(path: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new KvlensInputError(`cannot read image file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  return decodeAny(bytes, path);
}

export async function listImages(spec: string): Promise<ImageItem[]> {
  if (spec.startsWith('dataset:')) return listDataset(spec);
  let st;
  try {
    st = statSync(spec);
  } catch (e) {
    throw new KvlensInputError(`cannot read the image source (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
      'give a directory, a list file, or dataset:<name>:<root>', spec);
  }
  const items = st.isDirectory() ? listDirectory(spec) : listFile(spec);
  checkUnique(items, spec);
  return items;
}

function fromPath(id: string, path: string): ImageItem {
  return { id, source: path, load: () => loadAny(path) };
}

function listDirectory(root: string): ImageItem[] {
  const rels: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (IMAGE_EXTENSIONS.some((x) => e.name.toLowerCase().endsWith(x))) rels.push(r);
    }
  };
  walk('');
  rels.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)); // code-point order: independent of locale
  if (rels.length === 0) throw new KvlensInputError(`no image files (${IMAGE_EXTENSIONS.join(' ')}) below this directory`, root);
  return rels.map((r) => fromPath(r, resolve(root, r)));
}

function listFile(file: string): ImageItem[] {
  const base = resolve(file, '..');
  const items: ImageItem[] = [];
  readFileSync(file, 'utf8').split(/\r?\n/).forEach((raw) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const id = line.split(sep).join('/').replace(/^\.\//, '');
    items.push(fromPath(id, isAbsolute(line) ? line : resolve(base, line)));
  });
  if (items.length === 0) throw new KvlensInputError('the list file names no images', file);
  return items;
}

/** "dataset:<name>:<root>[?k=v&...]" -> name, root, loader options. */
export function parseDatasetSpec(spec: string): { name: string; root: string; options: GenericDatasetOptions } {
  const m = /^dataset:([^:]+):(.+?)(?:\?(.*))?$/.exec(spec);
  if (!m) throw new KvlensInputError(`expected dataset:<name>:<root>[?split=...&fold=...], got "${spec}"`, '--images');
  const [, name, root, query] = m;
  if (!isDatasetName(name)) throw new KvlensInputError(`unknown dataset "${name}"; known: ${DATASET_NAMES.join(', ')}`, '--images');
  const options: GenericDatasetOptions = {};
  for (const [k, v] of new URLSearchParams(query ?? '')) {
    if (k === 'fold' || k === 'variant' || k === 'limit') (options as Record<string, number>)[k] = Number(v);
    else if (['split', 'subset', 'splitBy', 'imageRoot'].includes(k)) (options as Record<string, string>)[k] = v;
    else throw new KvlensInputError(`unknown dataset option "${k}" (split, fold, variant, subset, splitBy, imageRoot, limit)`, '--images');
  }
  return { name, root, options };
}

async function listDataset(spec: string): Promise<ImageItem[]> {
  const { name, root, options } = parseDatasetSpec(spec);
  const out: ImageItem[] = [];
  const seen = new Set<string>();
  const add = (src: ImageSource | null | undefined) => {
    if (!src) return;
    const item = src.kind === 'path'
      ? fromPath(relative(root, src.path).split(sep).join('/'), src.path)
      : { id: src.name, source: src.name, load: () => decodeAny(src.bytes, src.name) };
    if (seen.has(item.id)) return;
    seen.add(item.id);
    out.push(item);
  };
  for await (const sample of iterateDataset(name as Parameters<typeof iterateDataset>[0], root, options)) {
    const s = sample as { image?: ImageSource; images?: readonly (ImageSource | null)[]; frames?: readonly { image: ImageSource }[] };
    add(s.image);
    for (const img of s.images ?? []) add(img);
    for (const f of s.frames ?? []) add(f.image);
  }
  if (out.length === 0) throw new KvlensInputError(`dataset ${name} yielded no images`, root);
  return out;
}

function checkUnique(items: readonly ImageItem[], where: string): void {
  const seen = new Set<string>();
  for (const it of items) {
    if (seen.has(it.id)) throw new KvlensInputError(`image id "${it.id}" appears twice; ids must be unique`, where);
    seen.add(it.id);
  }
}
