// Ground truth for the probes, read from a dataset in its on-disk layout and tied to the images of a feature store.
//
// Store ids come from extraction (src/extract/sources.ts): for a dataset source the id is the image path relative to
// the dataset root, for a directory the path relative to it, for a list file the line as written. A dataset image is
// matched to the store by (1) the store record's absolute source path, (2) the id = path relative to the dataset root,
// (3) a unique store id that the relative path ends with (or that ends with it). Anything else is reported as missing.
import { basename, relative, resolve, sep } from 'node:path';
import { iterateDataset, type CosegSample, type DatasetName, type GenericDatasetOptions, type ImageSource, type Pascal5iSample, type SpairSample } from '../data/index.js';
import type { FeatureStore } from '../store/index.js';
import type { LabelMap } from '../probes/grid.js';
import type { Point } from '../metrics/pck.js';
import { KvlensInputError } from '../util/errors.js';

/** Finds the store id of a dataset image; undefined when the store does not hold it. */
export class StoreImageResolver {
  private readonly bySource = new Map<string, string>();
  private readonly ids: string[];
  private readonly idSet: Set<string>;

  constructor(store: FeatureStore, private readonly datasetRoot: string) {
    this.ids = store.images();
    this.idSet = new Set(this.ids);
    for (const id of this.ids) {
      const src = store.image(id).source;
      if (src) this.bySource.set(resolve(src), id);
    }
  }

  resolve(image: ImageSource): string | undefined {
    if (image.kind === 'bytes') return this.idSet.has(image.name) ? image.name : undefined;
    const abs = resolve(image.path);
    const direct = this.bySource.get(abs);
    if (direct) return direct;
    const rel = relative(resolve(this.datasetRoot), abs).split(sep).join('/');
    if (this.idSet.has(rel)) return rel;
    const hits = this.ids.filter((id) => rel.endsWith(`/${id}`) || id.endsWith(`/${rel}`) || (id === basename(abs)));
    return hits.length === 1 ? hits[0] : undefined;
  }
}

/** One (image, class) of the few-shot lists, with its label map; classValue is the mask value of the class (1..20). */
export interface SegTruth {
  readonly storeId: string;
  readonly classValue: number;
  readonly labels: LabelMap;
}

/** One image of a co-segmentation group, with its binary mask (1 = the group's object). */
export interface CosegTruth {
  readonly group: string;
  readonly storeId: string;
  readonly labels: LabelMap;
}

export interface PairTruth {
  readonly source: string;
  readonly target: string;
  readonly sourceSize: { width: number; height: number };
  readonly targetSize: { width: number; height: number };
  readonly sourceKeypoints: Point[];
  readonly targetKeypoints: Point[];
  readonly targetBBox: [number, number, number, number];
  readonly category: string;
}

export interface TruthLoadResult<T> {
  readonly items: T[];
  /** Dataset images that the store does not hold (skipped), as paths/names. */
  readonly missing: string[];
}

function sourceName(s: ImageSource): string {
  return s.kind === 'path' ? s.path : s.name;
}

/**
 * Pascal-5i (image, class) entries with masks of one fold's list (default val), or, with 'pooled', every fold's val and
 * trn lists together (the demo's small synthetic sets have too few images per fold); duplicates are kept once.
 */
export async function loadSegTruth(store: FeatureStore, root: string, opts: { fold: number | 'pooled'; split?: string; dataset?: DatasetName }): Promise<TruthLoadResult<SegTruth>> {
  const name = opts.dataset ?? 'pascal5i';
  if (name !== 'pascal5i') throw new KvlensInputError(`few-shot segmentation reads the Pascal-5i layout; dataset "${name}" is not supported`, root);
  const resolver = new StoreImageResolver(store, root);
  const runs: GenericDatasetOptions[] = opts.fold === 'pooled'
    ? [0, 1, 2, 3].flatMap((fold) => ['val', 'trn'].map((split) => ({ fold, split })))
    : [{ fold: opts.fold, split: opts.split ?? 'val' }];
  const items: SegTruth[] = [];
  const seen = new Set<string>();
  const missing: string[] = [];
  for (const run of runs) {
    for await (const s of iterateDataset('pascal5i', root, run) as AsyncGenerator<Pascal5iSample>) {
      const storeId = resolver.resolve(s.image);
      if (!storeId) { missing.push(sourceName(s.image)); continue; }
      const key = `${storeId}\u0000${s.classId}`;
      if (seen.has(key)) continue;
      seen.add(key);
      items.push({ storeId, classValue: s.classId + 1, labels: { height: s.mask.height, width: s.mask.width, data: s.mask.data } });
    }
  }
  return { items, missing: [...new Set(missing)] };
}

/** SPair-71k pairs with keypoints and target boxes, both images resolved to store ids. */
export async function loadPairTruth(store: FeatureStore, root: string, opts: { split?: string; dataset?: DatasetName }): Promise<TruthLoadResult<PairTruth>> {
  const name = opts.dataset ?? 'spair';
  if (name !== 'spair') throw new KvlensInputError(`correspondence reads the SPair-71k layout; dataset "${name}" is not supported`, root);
  const resolver = new StoreImageResolver(store, root);
  const items: PairTruth[] = [];
  const missing: string[] = [];
  for await (const s of iterateDataset('spair', root, { split: opts.split ?? 'test' }) as AsyncGenerator<SpairSample>) {
    const source = resolver.resolve(s.src.image);
    const target = resolver.resolve(s.trg.image);
    if (!source) missing.push(sourceName(s.src.image));
    if (!target) missing.push(sourceName(s.trg.image));
    if (!source || !target) continue;
    items.push({
      source, target,
      sourceSize: { width: s.src.width, height: s.src.height },
      targetSize: { width: s.trg.width, height: s.trg.height },
      sourceKeypoints: s.src.kps.map(([x, y]) => ({ x, y })),
      targetKeypoints: s.trg.kps.map(([x, y]) => ({ x, y })),
      targetBBox: s.trg.bndbox,
      category: s.category,
    });
  }
  return { items, missing: [...new Set(missing)] };
}

/** MSRC co-segmentation groups (in dataset order), every image resolved to a store id. */
export async function loadCosegTruth(store: FeatureStore, root: string, opts: { dataset?: DatasetName; subset?: string }): Promise<TruthLoadResult<CosegTruth>> {
  const name = opts.dataset ?? 'msrc';
  if (name !== 'msrc') throw new KvlensInputError(`co-segmentation reads the MSRC layout; dataset "${name}" is not supported`, root);
  const resolver = new StoreImageResolver(store, root);
  const items: CosegTruth[] = [];
  const missing: string[] = [];
  for await (const s of iterateDataset('msrc', root, { subset: opts.subset }) as AsyncGenerator<CosegSample>) {
    const storeId = resolver.resolve(s.image);
    if (!storeId) { missing.push(sourceName(s.image)); continue; }
    items.push({ group: s.group, storeId, labels: { height: s.mask.height, width: s.mask.width, data: s.mask.data } });
  }
  return { items, missing: [...new Set(missing)] };
}
