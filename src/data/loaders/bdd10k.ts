// BDD10K semantic segmentation, both releases:
//  current: images/10k/<split>/<name>.jpg + labels/sem_seg/masks/<split>/<name>.png
//  older:   seg/images/<split>/<name>.jpg + seg/labels/<split>/<name>_train_id.png (suffix stripped)
// Masks are single-channel train ids 0..18 with 255 = unknown (kept).
// With `select`, only the images whose BDD frame attributes (time of day, scene, weather; bdd10k-attributes.ts) match.
import { join } from 'node:path';
import { KvlensInputError } from '../../util/errors.js';
import { checkMaskMatchesImage, isDirectory, listDir, loadEach, readBytes } from '../io.js';
import { decodeLabelPng } from '../png.js';
import type { Bdd10kSample, LoaderOptions } from '../types.js';
import { findAttributeFiles, matchesSelection, readAttributeFiles, validateSelection, type BddAttributes, type BddSelection } from './bdd10k-attributes.js';

export const BDD_CLASSES = [
  'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign', 'vegetation', 'terrain', 'sky',
  'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle',
] as const;

export interface Bdd10kOptions extends LoaderOptions {
  split?: string;
  /** Keep only images whose frame attributes match (e.g. { timeofday: ['night'], scene: ['highway'] }). */
  select?: BddSelection;
  /** Scalabel label files with frame attributes (default: found under the root, findAttributeFiles). */
  attributeFiles?: readonly string[];
}
export interface Bdd10kEntry { id: string; imagePath: string; maskPath: string; attributes?: BddAttributes }

/** What a selection kept, for the run's protocol (the selected ids are the checked-in record of the subset). */
export interface Bdd10kSelectionReport {
  readonly split: string;
  readonly select: BddSelection;
  readonly attributeFiles: string[];
  readonly listed: number;
  /** Images with no frame in any attribute file (never selected). */
  readonly withoutAttributes: number;
  readonly selected: string[];
}

export async function bddLayout(root: string): Promise<{ base: string; layout: 'current' | 'older' }> {
  for (const base of [root, join(root, 'bdd100k')]) {
    if (await isDirectory(join(base, 'labels', 'sem_seg', 'masks'))) return { base, layout: 'current' };
    if (await isDirectory(join(base, 'seg', 'labels'))) return { base, layout: 'older' };
  }
  throw new KvlensInputError('no labels/sem_seg/masks/ (current release) or seg/labels/ (older release) folder', root);
}

export async function listBdd10k(root: string, opts: Bdd10kOptions = {}): Promise<Bdd10kEntry[]> {
  const split = opts.split ?? 'val';
  const { base, layout } = await bddLayout(root);
  const maskDir = layout === 'current' ? join(base, 'labels', 'sem_seg', 'masks', split) : join(base, 'seg', 'labels', split);
  const imgDir = layout === 'current' ? join(base, 'images', '10k', split) : join(base, 'seg', 'images', split);
  if (!(await isDirectory(imgDir))) throw new KvlensInputError(`missing folder (BDD10K ${split} images)`, imgDir);
  const suffix = layout === 'current' ? '.png' : '_train_id.png';
  const entries = (await listDir(maskDir, `BDD10K ${split} masks`)).filter((n) => n.endsWith(suffix)).map((n) => {
    const id = n.slice(0, -suffix.length);
    return { id, imagePath: join(imgDir, `${id}.jpg`), maskPath: join(maskDir, n) };
  });
  if (!opts.select) return entries;
  return (await selectBdd10k(root, entries, opts.select, opts.attributeFiles, split)).entries;
}

/** Attach frame attributes and keep the entries matching `select`; errors when no attribute file exists. */
export async function selectBdd10k(root: string, entries: readonly Bdd10kEntry[], select: BddSelection, attributeFiles: readonly string[] | undefined, split: string): Promise<{ entries: Bdd10kEntry[]; report: Bdd10kSelectionReport }> {
  validateSelection(select);
  const files = attributeFiles && attributeFiles.length > 0 ? [...attributeFiles] : await findAttributeFiles(root);
  if (files.length === 0) {
    throw new KvlensInputError('selecting by BDD attributes needs a Scalabel label file with frame attributes: labels/det_20/det_{train,val}.json (current release) or labels/bdd100k_labels_images_{train,val}.json (older); none found', root);
  }
  const index = await readAttributeFiles(files);
  let withoutAttributes = 0;
  const kept: Bdd10kEntry[] = [];
  for (const e of entries) {
    const attributes = index.byStem.get(e.id);
    if (!attributes) withoutAttributes++;
    if (matchesSelection(attributes, select)) kept.push({ ...e, attributes });
  }
  return { entries: kept, report: { split, select, attributeFiles: files, listed: entries.length, withoutAttributes, selected: kept.map((e) => e.id) } };
}

/** List a split and apply a selection, returning the selection report too (used by the BDD10K probe). */
export async function listSelectedBdd10k(root: string, split: string, select: BddSelection, attributeFiles?: readonly string[]): Promise<{ entries: Bdd10kEntry[]; report: Bdd10kSelectionReport }> {
  return selectBdd10k(root, await listBdd10k(root, { split }), select, attributeFiles, split);
}

export async function loadBdd10k(e: Bdd10kEntry, split: string): Promise<Bdd10kSample> {
  const mask = decodeLabelPng(await readBytes(e.maskPath, 'BDD10K mask'), e.maskPath);
  const image = { kind: 'path' as const, path: e.imagePath };
  await checkMaskMatchesImage(mask, e.maskPath, image);
  return { dataset: 'bdd10k', split, id: e.id, image, mask, ...(e.attributes ? { attributes: e.attributes } : {}) };
}

export async function* iterateBdd10k(root: string, opts: Bdd10kOptions = {}): AsyncGenerator<Bdd10kSample> {
  yield* loadEach(await listBdd10k(root, opts), (e) => loadBdd10k(e, opts.split ?? 'val'), opts);
}
