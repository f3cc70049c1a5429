// SPair-71k: Layout/<large|small>/<split>.txt lists pair names `<idx>-<src>-<trg>:<category>` (a colon in the file name);
// PairAnnotation/<split>/<pair>.json holds keypoints matched by order, boxes [x1,y1,x2,y2] and `*_imsize` = [W, H, depth].
import { join } from 'node:path';
import { describeValue, KvlensInputError } from '../../util/errors.js';
import {
  expectArray, expectNumber, expectNumberArray, expectObject, expectString, imageSize, loadEach, readJson, readLines,
} from '../io.js';
import type { BoxXYXY, LoaderOptions, Point, SpairSample, SpairSide } from '../types.js';

export const SPAIR_CATEGORIES = [
  'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'dog', 'horse', 'motorbike',
  'person', 'pottedplant', 'sheep', 'train', 'tvmonitor',
] as const;

export interface SpairOptions extends LoaderOptions {
  split?: 'trn' | 'val' | 'test';
  layout?: 'large' | 'small';
  /** Check each image's header against `*_imsize` (default true). */
  verifyImageSizes?: boolean;
}

/** Splits a pair name on its LAST colon; the category is what follows (never a substring test). */
export function parsePairName(name: string, where: string): { index: string; src: string; trg: string; category: string } {
  const colon = name.lastIndexOf(':');
  const m = /^(\d+)-([^-]+)-([^-]+)$/.exec(colon < 0 ? '' : name.slice(0, colon));
  if (colon < 0 || !m) throw new KvlensInputError(`pair name ${describeValue(name)} is not "<idx>-<src>-<trg>:<category>"`, where);
  return { index: m[1], src: m[2], trg: m[3], category: name.slice(colon + 1) };
}

function points(o: Record<string, unknown>, key: string, where: string): Point[] {
  return expectArray(o, key, where).map((p, i) => {
    if (!Array.isArray(p) || p.length < 2 || typeof p[0] !== 'number' || typeof p[1] !== 'number') {
      throw new KvlensInputError(`${key}[${i}] must be [x, y]`, where);
    }
    return [p[0], p[1]];
  });
}

function side(root: string, o: Record<string, unknown>, prefix: 'src' | 'trg', category: string, where: string): SpairSide {
  const imname = expectString(o, `${prefix}_imname`, where);
  const imsize = expectNumberArray(o, `${prefix}_imsize`, where, 2);
  const box = expectNumberArray(o, `${prefix}_bndbox`, where, 4);
  const stem = imname.replace(/\.[^.]+$/, '');
  return {
    imname, image: { kind: 'path', path: join(root, 'JPEGImages', category, imname) },
    width: imsize[0], height: imsize[1], bndbox: [box[0], box[1], box[2], box[3]] as BoxXYXY,
    pose: typeof o[`${prefix}_pose`] === 'string' ? (o[`${prefix}_pose`] as string) : 'Unspecified',
    kps: points(o, `${prefix}_kps`, where), segmentationPath: join(root, 'Segmentation', category, `${stem}.png`),
  };
}

export async function loadSpairPair(root: string, name: string, split: 'trn' | 'val' | 'test', verify = true): Promise<SpairSample> {
  const path = join(root, 'PairAnnotation', split, `${name}.json`);
  const parsed = parsePairName(name, path);
  const o = expectObject(await readJson(path, 'SPair pair annotation'), path, 'pair annotation');
  const category = typeof o.category === 'string' ? o.category : parsed.category;
  if (category !== parsed.category) throw new KvlensInputError(`category "${category}" disagrees with the pair name's "${parsed.category}"`, path);
  const src = side(root, o, 'src', category, path);
  const trg = side(root, o, 'trg', category, path);
  if (src.kps.length !== trg.kps.length) throw new KvlensInputError(`src_kps has ${src.kps.length} points but trg_kps ${trg.kps.length}`, path);
  const kpsIds = Array.isArray(o.kps_ids) ? o.kps_ids.map((v) => Number.parseInt(String(v), 10)) : src.kps.map((_, i) => i);
  if (kpsIds.length !== src.kps.length || kpsIds.some((v) => Number.isNaN(v))) {
    throw new KvlensInputError(`kps_ids must hold ${src.kps.length} integers`, path);
  }
  if (verify) {
    for (const s of [src, trg]) {
      const size = await imageSize(s.image);
      if (size.width !== s.width || size.height !== s.height) {
        throw new KvlensInputError(`imsize says ${s.width}x${s.height} (W x H) but ${s.image.kind === 'path' ? s.image.path : ''} is ${size.width}x${size.height}`, path);
      }
    }
  }
  const flag = (k: string) => (typeof o[k] === 'number' ? (o[k] as number) : 0);
  return {
    dataset: 'spair', pairName: name, pairId: o.pair_id === undefined ? Number(parsed.index) : expectNumber(o, 'pair_id', path),
    split, category, src, trg, kpsIds, viewpointVariation: flag('viewpoint_variation'), scaleVariation: flag('scale_variation'),
    truncation: flag('truncation'), occlusion: flag('occlusion'), mirror: flag('mirror'),
  };
}

export async function listSpair(root: string, opts: SpairOptions = {}): Promise<string[]> {
  const list = join(root, 'Layout', opts.layout ?? 'large', `${opts.split ?? 'test'}.txt`);
  return (await readLines(list, 'SPair pair list')).map((l) => l.trim());
}

export async function* iterateSpair(root: string, opts: SpairOptions = {}): AsyncGenerator<SpairSample> {
  const split = opts.split ?? 'test';
  yield* loadEach(await listSpair(root, opts), (n) => loadSpairPair(root, n, split, opts.verifyImageSizes ?? true), opts);
}
