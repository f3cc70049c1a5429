// ImageNet-S (50/300/919): `<split>/<wnid>/<stem>.JPEG` + `<split>-segmentation/<wnid>/<stem>.png` (RGB, class = R + 256*G,
// 1000 = ignore). Class ids: line i (1-based) of ImageNetS_categories_im<N>.txt; when that file is absent, the sorted
// wnid folders (the repo's files are sorted, so this agrees whenever every class folder is present).
import { extname, join } from 'node:path';
import { KvlensInputError } from '../../util/errors.js';
import { checkMaskMatchesImage, isDirectory, isFile, listDir, loadEach, readBytes, readLines } from '../io.js';
import { decodeImageNetSMask } from '../png.js';
import type { ImageNetSSample, LoaderOptions } from '../types.js';

export const IMAGENET_S_IGNORE = 1000;

export interface ImageNetSOptions extends LoaderOptions {
  variant?: 50 | 300 | 919;
  split?: 'validation' | 'train-semi';
  /** Explicit categories file; default: searched under the root (categories/, data/categories/, or beside the splits). */
  categoriesFile?: string;
}

export interface ImageNetSEntry { wnid: string; stem: string; maskPath: string; imageDir: string }

/** The root may be the ImageNetS<N> folder itself or a folder containing it. */
export async function imageNetSRoot(root: string, variant: number): Promise<string> {
  const inner = join(root, `ImageNetS${variant}`);
  return (await isDirectory(inner)) ? inner : root;
}

export async function readImageNetSCategories(root: string, opts: ImageNetSOptions): Promise<string[] | null> {
  const v = opts.variant ?? 50;
  const name = `ImageNetS_categories_im${v}.txt`;
  const candidates = opts.categoriesFile ? [opts.categoriesFile]
    : [join(root, name), join(root, 'categories', name), join(root, 'data', 'categories', name), join(root, '..', 'categories', name)];
  for (const c of candidates) {
    if (!(await isFile(c))) { if (opts.categoriesFile) throw new KvlensInputError('missing categories file', c); continue; }
    const wnids = (await readLines(c, 'ImageNet-S categories')).map((l) => l.trim());
    const expected = v === 919 ? 919 : v;
    if (wnids.length !== expected) throw new KvlensInputError(`expected ${expected} wnids, found ${wnids.length}`, c);
    return wnids;
  }
  return null;
}

export async function listImageNetS(root: string, opts: ImageNetSOptions = {}): Promise<{ entries: ImageNetSEntry[]; wnids: string[] }> {
  const v = opts.variant ?? 50;
  const split = opts.split ?? 'validation';
  const base = await imageNetSRoot(root, v);
  const segDir = join(base, `${split}-segmentation`);
  const imgDir = join(base, split);
  const folders = await listDir(segDir, `ImageNet-S${v} ${split} masks`);
  if (!(await isDirectory(imgDir))) throw new KvlensInputError(`missing folder (ImageNet-S${v} ${split} images)`, imgDir);
  const wnids = (await readImageNetSCategories(base, opts)) ?? folders.filter((f) => /^n\d{8}$/.test(f));
  const entries: ImageNetSEntry[] = [];
  for (const wnid of folders) {
    if (!(await isDirectory(join(segDir, wnid)))) continue;
    for (const name of await listDir(join(segDir, wnid), `masks of ${wnid}`)) {
      if (extname(name).toLowerCase() !== '.png') continue;
      entries.push({ wnid, stem: name.slice(0, -4), maskPath: join(segDir, wnid, name), imageDir: join(imgDir, wnid) });
    }
  }
  return { entries, wnids };
}

export async function loadImageNetS(e: ImageNetSEntry, wnids: string[], opts: ImageNetSOptions): Promise<ImageNetSSample> {
  const classIndex = wnids.indexOf(e.wnid);
  if (classIndex < 0) throw new KvlensInputError(`folder ${e.wnid} is not an ImageNet-S${opts.variant ?? 50} category`, e.maskPath);
  let imagePath: string | null = null;
  for (const ext of ['.JPEG', '.jpg', '.jpeg', '.png']) {
    if (await isFile(join(e.imageDir, e.stem + ext))) { imagePath = join(e.imageDir, e.stem + ext); break; }
  }
  if (!imagePath) throw new KvlensInputError(`no image ${e.stem}.JPEG for this mask`, e.maskPath);
  const mask = decodeImageNetSMask(await readBytes(e.maskPath, 'ImageNet-S mask'), e.maskPath);
  const image = { kind: 'path' as const, path: imagePath };
  await checkMaskMatchesImage(mask, e.maskPath, image);
  return {
    dataset: 'imagenet-s', variant: opts.variant ?? 50, split: opts.split ?? 'validation', id: `${e.wnid}/${e.stem}`,
    wnid: e.wnid, classId: classIndex + 1, image, mask,
  };
}

export async function* iterateImageNetS(root: string, opts: ImageNetSOptions = {}): AsyncGenerator<ImageNetSSample> {
  const { entries, wnids } = await listImageNetS(root, opts);
  yield* loadEach(entries, (e) => loadImageNetS(e, wnids, opts), opts);
}
