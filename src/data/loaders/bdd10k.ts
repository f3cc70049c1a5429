// BDD10K semantic segmentation, both releases:
//  current: images/10k/<split>/<name>.jpg + labels/sem_seg/masks/<split>/<name>.png
//  older:   seg/images/<split>/<name>.jpg + seg/labels/<split>/<name>_train_id.png (suffix stripped)
// Masks are single-channel train ids 0..18 with 255 = unknown (kept).
import { join } from 'node:path';
import { KvlensInputError } from '../../util/errors.js';
import { checkMaskMatchesImage, isDirectory, listDir, loadEach, readBytes } from '../io.js';
import { decodeLabelPng } from '../png.js';
import type { Bdd10kSample, LoaderOptions } from '../types.js';

export const BDD_CLASSES = [
  'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign', 'vegetation', 'terrain', 'sky',
  'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle',
] as const;

export interface Bdd10kOptions extends LoaderOptions { split?: string }
export interface Bdd10kEntry { id: string; imagePath: string; maskPath: string }

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
  return (await listDir(maskDir, `BDD10K ${split} masks`)).filter((n) => n.endsWith(suffix)).map((n) => {
    const id = n.slice(0, -suffix.length);
    return { id, imagePath: join(imgDir, `${id}.jpg`), maskPath: join(maskDir, n) };
  });
}

export async function loadBdd10k(e: Bdd10kEntry, split: string): Promise<Bdd10kSample> {
  const mask = decodeLabelPng(await readBytes(e.maskPath, 'BDD10K mask'), e.maskPath);
  const image = { kind: 'path' as const, path: e.imagePath };
  await checkMaskMatchesImage(mask, e.maskPath, image);
  return { dataset: 'bdd10k', split, id: e.id, image, mask };
}

export async function* iterateBdd10k(root: string, opts: Bdd10kOptions = {}): AsyncGenerator<Bdd10kSample> {
  yield* loadEach(await listBdd10k(root, opts), (e) => loadBdd10k(e, opts.split ?? 'val'), opts);
}
