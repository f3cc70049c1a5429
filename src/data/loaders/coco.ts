// COCO 2014/2017 instances: annotations/instances_<split>.json + <split>/<file_name>. Category ids are
// non-contiguous (1..90); masks come from polygons (pycocotools rasteriser) or RLE (iscrowd).
import { join } from 'node:path';
import { KvlensInputError } from '../../util/errors.js';
import { decodeSegmentation } from '../coco-mask.js';
import {
  expectArray, expectNumber, expectNumberArray, expectObject, expectString, imageSize, isFile, loadEach, readJson,
} from '../io.js';
import type { BoxXYWH, CocoObject, CocoSample, CocoSegmentation, LoaderOptions } from '../types.js';

export interface CocoOptions extends LoaderOptions { split?: string; annotationFile?: string }

export interface CocoImageInfo { id: number; fileName: string; width: number; height: number }
export interface CocoAnnotation {
  id: number; imageId: number; categoryId: number; segmentation: CocoSegmentation; area: number; bbox: BoxXYWH; iscrowd: 0 | 1;
}
export interface CocoIndex {
  path: string;
  images: CocoImageInfo[];
  imagesById: Map<number, CocoImageInfo>;
  annotationsByImage: Map<number, CocoAnnotation[]>;
  annotationsById: Map<number, CocoAnnotation>;
  categories: Map<number, string>;
}

function parseSegmentation(v: unknown, where: string): CocoSegmentation {
  if (Array.isArray(v)) return v as number[][];
  const o = expectObject(v, where, 'segmentation');
  const size = expectNumberArray(o, 'size', where, 2);
  if (typeof o.counts !== 'string' && !Array.isArray(o.counts)) throw new KvlensInputError('segmentation.counts must be a list or a string', where);
  return { counts: o.counts as number[] | string, size: [size[0], size[1]] };
}

/** Reads and indexes an instances JSON (also RefCOCO's instances.json). */
export async function readCocoInstances(path: string): Promise<CocoIndex> {
  const root = expectObject(await readJson(path, 'COCO instances'), path, 'instances file');
  const images: CocoImageInfo[] = expectArray(root, 'images', path).map((raw, i) => {
    const where = `${path} images[${i}]`;
    const o = expectObject(raw, where, 'image');
    return { id: expectNumber(o, 'id', where), fileName: expectString(o, 'file_name', where), width: expectNumber(o, 'width', where), height: expectNumber(o, 'height', where) };
  });
  const categories = new Map<number, string>();
  for (const [i, raw] of expectArray(root, 'categories', path).entries()) {
    const where = `${path} categories[${i}]`;
    const o = expectObject(raw, where, 'category');
    categories.set(expectNumber(o, 'id', where), expectString(o, 'name', where));
  }
  const annotationsByImage = new Map<number, CocoAnnotation[]>();
  const annotationsById = new Map<number, CocoAnnotation>();
  for (const [i, raw] of expectArray(root, 'annotations', path).entries()) {
    const where = `${path} annotations[${i}]`;
    const o = expectObject(raw, where, 'annotation');
    const bbox = expectNumberArray(o, 'bbox', where, 4);
    const ann: CocoAnnotation = {
      id: expectNumber(o, 'id', where), imageId: expectNumber(o, 'image_id', where), categoryId: expectNumber(o, 'category_id', where),
      segmentation: parseSegmentation(o.segmentation, where), area: typeof o.area === 'number' ? o.area : 0,
      bbox: [bbox[0], bbox[1], bbox[2], bbox[3]], iscrowd: o.iscrowd ? 1 : 0,
    };
    const list = annotationsByImage.get(ann.imageId) ?? [];
    list.push(ann);
    annotationsByImage.set(ann.imageId, list);
    annotationsById.set(ann.id, ann);
  }
  return { path, images, imagesById: new Map(images.map((im) => [im.id, im])), annotationsByImage, annotationsById, categories };
}

export function cocoObject(index: CocoIndex, ann: CocoAnnotation, img: CocoImageInfo): CocoObject {
  const where = `${index.path} annotation ${ann.id}`;
  const categoryName = index.categories.get(ann.categoryId);
  if (categoryName === undefined) throw new KvlensInputError(`category_id ${ann.categoryId} is not in categories`, where);
  const mask = decodeSegmentation(ann.segmentation, img.height, img.width, where);
  return { annId: ann.id, categoryId: ann.categoryId, categoryName, bbox: ann.bbox, area: ann.area, iscrowd: ann.iscrowd, segmentation: ann.segmentation, mask };
}

/** The declared width/height must be the image file's. */
export async function checkCocoImageSize(img: CocoImageInfo, path: string, annFile: string): Promise<void> {
  const size = await imageSize({ kind: 'path', path });
  if (size.width !== img.width || size.height !== img.height) {
    throw new KvlensInputError(`image ${img.id} is declared ${img.width}x${img.height} but ${path} is ${size.width}x${size.height}`, annFile);
  }
}

export async function* iterateCoco(root: string, opts: CocoOptions = {}): AsyncGenerator<CocoSample> {
  const split = opts.split ?? 'val2017';
  const index = await readCocoInstances(opts.annotationFile ?? join(root, 'annotations', `instances_${split}.json`));
  yield* loadEach(index.images, async (img) => {
    const path = join(root, split, img.fileName);
    await checkCocoImageSize(img, path, index.path);
    const objects = (index.annotationsByImage.get(img.id) ?? []).map((a) => cocoObject(index, a, img));
    return { dataset: 'coco', imageId: img.id, fileName: img.fileName, width: img.width, height: img.height, image: { kind: 'path', path }, objects };
  }, opts);
}

/**
 * Finds a COCO image by its 2014 file name under a COCO root, falling back to the 2017 folders by id
 * (val2017 is a subset of val2014; the rest of val2014 is in train2017). Returns null when absent everywhere.
 */
export async function resolveCocoImage(cocoRoot: string, fileName: string): Promise<string | null> {
  const m = /^COCO_(train|val)2014_(\d{12})\.jpg$/.exec(fileName);
  const candidates = [join(cocoRoot, fileName)];
  if (m) {
    candidates.push(join(cocoRoot, `${m[1]}2014`, fileName), join(cocoRoot, 'val2017', `${m[2]}.jpg`), join(cocoRoot, 'train2017', `${m[2]}.jpg`));
  }
  for (const c of candidates) if (await isFile(c)) return c;
  return null;
}
