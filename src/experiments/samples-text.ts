// Ground truth of the text-query probes, tied to the images of a feature store (resolution as in samples.ts):
//   ImageNet-S  per image: its label map (0 = background, 1..N, 1000 = ignore) and the classes to query, named by text
//   RefCOCO     per (referred object, sentence): the object's binary mask and the expression
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { iterateDataset, type DatasetName, type ImageNetSSample, type ImageSource, type RefCocoSample } from '../data/index.js';
import { IMAGENET_S_IGNORE, imageNetSRoot, readImageNetSCategories } from '../data/loaders/imagenet-s.js';
import type { LabelMap } from '../probes/grid.js';
import type { FeatureStore } from '../store/index.js';
import { KvlensInputError } from '../util/errors.js';
import { StoreImageResolver, type TruthLoadResult } from './samples.js';

export interface SemSegTruth {
  readonly storeId: string;
  /** ImageNet-S class ids, R + 256*G. */
  readonly labels: LabelMap;
  /** Classes queried on this image (1-based ids). */
  readonly classIds: number[];
}

export interface SemSegTruthResult extends TruthLoadResult<SemSegTruth> {
  readonly numClasses: number;
  /** The query text of every class id that some image queries. */
  readonly classTexts: Map<number, string>;
  readonly namesFile: string;
}

export interface RefTruth {
  readonly storeId: string;
  readonly refId: number;
  readonly sentId: number;
  /** 0/1 mask of the referred object. */
  readonly labels: LabelMap;
  readonly text: string;
}

function sourceName(s: ImageSource): string {
  return s.kind === 'path' ? s.path : s.name;
}

/** File names searched for a wnid -> name list ("n01440764 tench, Tinca tinca" per line, as ImageNet ships it). */
export const CLASS_NAME_FILES = ['LOC_synset_mapping.txt', 'synset_words.txt', 'imagenet_class_names.txt'];

/** wnid -> the first comma-separated name of its line. Lines: "<wnid><space or tab><names>". */
export function parseWnidNames(text: string, where: string): Map<string, string> {
  const out = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, i) => {
    const l = line.trim();
    if (!l) return;
    const m = /^(n\d{8})\s+(.+)$/.exec(l);
    if (!m) throw new KvlensInputError(`line ${i + 1}: expected "<wnid> <name>[, <name>...]", got ${JSON.stringify(l.slice(0, 80))}`, where);
    const name = m[2].split(',')[0].trim();
    if (!name) throw new KvlensInputError(`line ${i + 1}: wnid ${m[1]} has an empty name`, where);
    out.set(m[1], name);
  });
  return out;
}

async function findNamesFile(root: string, base: string, explicit?: string): Promise<string> {
  if (explicit) {
    if (!existsSync(explicit)) throw new KvlensInputError('missing class-name file', explicit);
    return explicit;
  }
  for (const dir of [base, root, join(root, '..')]) {
    for (const f of CLASS_NAME_FILES) if (existsSync(join(dir, f))) return join(dir, f);
  }
  throw new KvlensInputError(`ImageNet-S masks give wnids only; the class-name queries need a wnid -> name list (${CLASS_NAME_FILES.join(' / ')} under the dataset root, or --class-names FILE with lines "<wnid> <name>[, ...]")`, root);
}

/**
 * ImageNet-S images with masks and the classes to query. `queries`: 'present' = the non-background classes of the
 * image's own mask (the ImageNet-S evaluation setting: which class is in the image is given, where it is is asked);
 * 'all' = every class of the variant (then each pixel takes the best-scoring class, a harder open-vocabulary setting).
 */
export async function loadSemSegTruth(store: FeatureStore, root: string, opts: {
  dataset?: DatasetName; split?: string; variant?: number; classNames?: string; textTemplate: string; queries: 'present' | 'all';
}): Promise<SemSegTruthResult> {
  const name = opts.dataset ?? 'imagenet-s';
  if (name !== 'imagenet-s') throw new KvlensInputError(`semantic segmentation reads the ImageNet-S layout; dataset "${name}" is not supported`, root);
  const variant = opts.variant ?? 50;
  const base = await imageNetSRoot(root, variant);
  const wnids = await readImageNetSCategories(base, { variant: variant as 50 | 300 | 919 });
  const namesFile = await findNamesFile(root, base, opts.classNames);
  const names = parseWnidNames(await readFile(namesFile, 'utf8'), namesFile);
  const resolver = new StoreImageResolver(store, root);
  const items: SemSegTruth[] = [];
  const missing: string[] = [];
  for await (const s of iterateDataset('imagenet-s', root, { split: opts.split, variant }) as AsyncGenerator<ImageNetSSample>) {
    const storeId = resolver.resolve(s.image);
    if (!storeId) { missing.push(sourceName(s.image)); continue; }
    const present = new Set<number>([s.classId]);
    for (const v of s.mask.data) if (v !== 0 && v !== IMAGENET_S_IGNORE) present.add(v);
    items.push({ storeId, labels: { height: s.mask.height, width: s.mask.width, data: s.mask.data }, classIds: [...present].sort((a, b) => a - b) });
  }
  const numClasses = variant;
  if (opts.queries === 'all') for (const it of items) it.classIds.splice(0, it.classIds.length, ...Array.from({ length: numClasses }, (_, k) => k + 1));
  // Without the categories file the loader numbered the sorted wnid folders; the same order is rebuilt here.
  const order = wnids ?? (await sortedWnidFolders(base, opts.split ?? 'validation'));
  const classTexts = new Map<number, string>();
  for (const it of items) {
    for (const c of it.classIds) {
      if (classTexts.has(c)) continue;
      const wnid = order[c - 1];
      if (!wnid) throw new KvlensInputError(`class id ${c} has no wnid (the variant lists ${order.length})`, base);
      const n = names.get(wnid);
      if (!n) throw new KvlensInputError(`no name for ${wnid} (class ${c})`, namesFile);
      classTexts.set(c, opts.textTemplate.replaceAll('{}', n));
    }
  }
  return { items, missing: [...new Set(missing)], numClasses, classTexts, namesFile };
}

async function sortedWnidFolders(base: string, split: string): Promise<string[]> {
  return (await readdir(join(base, `${split}-segmentation`))).filter((f) => /^n\d{8}$/.test(f)).sort();
}

/** RefCOCO referred objects, one entry per sentence; default split val of refcoco (unc). */
export async function loadRefTruth(store: FeatureStore, root: string, opts: { dataset?: DatasetName; split?: string; subset?: string }): Promise<TruthLoadResult<RefTruth>> {
  const name = opts.dataset ?? 'refcoco';
  if (name !== 'refcoco') throw new KvlensInputError(`referring segmentation reads the refer layout (refcoco/refs(unc).p + instances.json); dataset "${name}" is not supported`, root);
  const resolver = new StoreImageResolver(store, root);
  const items: RefTruth[] = [];
  const missing: string[] = [];
  for await (const s of iterateDataset('refcoco', root, { split: opts.split ?? 'val', subset: opts.subset }) as AsyncGenerator<RefCocoSample>) {
    const storeId = resolver.resolve(s.image);
    if (!storeId) { missing.push(sourceName(s.image)); continue; }
    const labels = { height: s.mask.height, width: s.mask.width, data: s.mask.data };
    for (const sent of s.sentences) items.push({ storeId, refId: s.refId, sentId: sent.sentId, labels, text: sent.sent });
  }
  return { items, missing: [...new Set(missing)] };
}
