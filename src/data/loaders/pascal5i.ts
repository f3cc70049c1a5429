// Pascal-5i (HSNet protocol): VOC2012 JPEGs + SegmentationClassAug masks + fold files of `<voc id>__<class 2 digits>`.
// One sample per (image, class) line; an image with two classes of the fold appears twice.
import { join } from 'node:path';
import { describeValue, KvlensInputError } from '../../util/errors.js';
import { checkMaskMatchesImage, loadEach, readBytes, readLines, requireDirectory } from '../io.js';
import { decodeLabelPng } from '../png.js';
import type { LoaderOptions, Pascal5iSample } from '../types.js';

export const VOC_CLASSES = [
  'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
  'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor',
] as const;

export interface Pascal5iOptions extends LoaderOptions {
  fold: number; // 0..3
  split: 'trn' | 'val';
  /** Folder holding `{trn,val}/fold{i}.txt`; default <root>/splits/pascal. */
  splitsDir?: string;
  /** Mask folder under VOC2012/; default SegmentationClassAug. */
  maskFolder?: string;
}

export interface Pascal5iEntry { id: string; classId: number; listFile: string; lineNo: number }

/** Parses one fold file. Fold i holds classes 5i+1..5i+5 (1-based); a line outside them is an error. */
export async function readFoldFile(path: string, fold: number): Promise<Pascal5iEntry[]> {
  const lines = await readLines(path, `Pascal-5i fold ${fold} list`);
  return lines.map((raw, k) => {
    const line = raw.trim();
    const m = /^(.+)__(\d+)$/.exec(line);
    if (!m) throw new KvlensInputError(`line ${k + 1}: expected "<voc id>__<class id>", got ${describeValue(line)}`, path);
    const cls = Number(m[2]);
    if (cls < 5 * fold + 1 || cls > 5 * fold + 5) {
      throw new KvlensInputError(`line ${k + 1}: class ${cls} is not one of fold ${fold}'s classes ${5 * fold + 1}..${5 * fold + 5}`, path);
    }
    return { id: m[1], classId: cls - 1, listFile: path, lineNo: k + 1 };
  });
}

export async function listPascal5i(root: string, opts: Pascal5iOptions): Promise<Pascal5iEntry[]> {
  if (!Number.isInteger(opts.fold) || opts.fold < 0 || opts.fold > 3) throw new KvlensInputError(`fold must be 0..3, got ${opts.fold}`);
  const splitsDir = opts.splitsDir ?? join(root, 'splits', 'pascal');
  await requireDirectory(join(root, 'VOC2012', 'JPEGImages'), 'VOC2012 JPEG images');
  await requireDirectory(join(root, 'VOC2012', opts.maskFolder ?? 'SegmentationClassAug'), 'VOC2012 class masks');
  // Training uses the other three folds' trn lists (HSNet read_metadata).
  const folds = opts.split === 'val' ? [opts.fold] : [0, 1, 2, 3].filter((f) => f !== opts.fold);
  const entries: Pascal5iEntry[] = [];
  for (const f of folds) entries.push(...(await readFoldFile(join(splitsDir, opts.split, `fold${f}.txt`), f)));
  return entries;
}

export async function loadPascal5i(root: string, e: Pascal5iEntry, opts: Pascal5iOptions): Promise<Pascal5iSample> {
  const image = { kind: 'path' as const, path: join(root, 'VOC2012', 'JPEGImages', `${e.id}.jpg`) };
  const maskPath = join(root, 'VOC2012', opts.maskFolder ?? 'SegmentationClassAug', `${e.id}.png`);
  const mask = decodeLabelPng(await readBytes(maskPath, `mask for ${e.listFile} line ${e.lineNo}`), maskPath);
  await checkMaskMatchesImage(mask, maskPath, image);
  return { dataset: 'pascal5i', id: e.id, classId: e.classId, fold: opts.fold, split: opts.split, image, mask };
}

export async function* iteratePascal5i(root: string, opts: Pascal5iOptions): AsyncGenerator<Pascal5iSample> {
  yield* loadEach(await listPascal5i(root, opts), (e) => loadPascal5i(root, e, opts), opts);
}

/** HSNet binary target: 1 where mask == classId+1, 255 kept as ignore, everything else (other classes too) 0. */
export function pascalBinaryTarget(mask: Pascal5iSample['mask'], classId: number): Uint8Array {
  const out = new Uint8Array(mask.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = mask.data[i];
    out[i] = v === 255 ? 255 : v === classId + 1 ? 1 : 0;
  }
  return out;
}
