// RefCOCO / RefCOCO+ / RefCOCOg in the refer-API layout: <root>/<dataset>/refs(<splitBy>).p (Python-2 pickle, read by the
// data-only unpickler) + <root>/<dataset>/instances.json; images are COCO train2014 under
// <root>/images/mscoco/images/train2014/ (the refs' `file_name` carries a fake "_<ann_id>" suffix and is ignored).
import { join } from 'node:path';
import { describeValue, KvlensInputError } from '../../util/errors.js';
import { decodeSegmentation } from '../coco-mask.js';
import { expectArray, expectNumber, expectObject, expectString, loadEach, readBytes } from '../io.js';
import { unpickle } from '../pickle.js';
import type { LoaderOptions, RefCocoSample, RefSentence } from '../types.js';
import { checkCocoImageSize, readCocoInstances } from './coco.js';

export type RefDataset = 'refcoco' | 'refcoco+' | 'refcocog';

export interface RefCocoOptions extends LoaderOptions {
  dataset?: RefDataset;
  splitBy?: string; // unc | google | umd
  split?: string; // train | val | test | testA | testB ...
  imageDir?: string;
}

export interface RefEntry {
  refId: number; annId: number; imageId: number; categoryId: number; split: string; sentences: RefSentence[]; where: string;
}

export function defaultSplitBy(dataset: RefDataset): string {
  return dataset === 'refcocog' ? 'umd' : 'unc';
}

/** refer.getRefIds split semantics: testA/B/C match any split containing the letter, `test` any split containing "test". */
export function refSplitMatches(refSplit: string, wanted: string): boolean {
  if (['testA', 'testB', 'testC'].includes(wanted)) return refSplit.includes(wanted[wanted.length - 1]);
  if (wanted === 'test') return refSplit.includes('test');
  return refSplit === wanted;
}

export async function readRefs(path: string): Promise<RefEntry[]> {
  const data = unpickle(await readBytes(path, 'refs pickle'), path);
  if (!Array.isArray(data)) throw new KvlensInputError('refs pickle must hold a list of dicts', path);
  return data.map((raw, i) => {
    const where = `${path} refs[${i}]`;
    const o = expectObject(raw, where, 'ref');
    const sentences = expectArray(o, 'sentences', where).map((s, k) => {
      const sw = `${where}.sentences[${k}]`;
      const so = expectObject(s, sw, 'sentence');
      const tokens = Array.isArray(so.tokens) ? so.tokens.map((t) => (typeof t === 'string' ? t : describeValue(t))) : [];
      return { sentId: expectNumber(so, 'sent_id', sw), sent: expectString(so, 'sent', sw), raw: typeof so.raw === 'string' ? so.raw : expectString(so, 'sent', sw), tokens };
    });
    return {
      refId: expectNumber(o, 'ref_id', where), annId: expectNumber(o, 'ann_id', where), imageId: expectNumber(o, 'image_id', where),
      categoryId: expectNumber(o, 'category_id', where), split: expectString(o, 'split', where), sentences, where,
    };
  });
}

export async function* iterateRefCoco(root: string, opts: RefCocoOptions = {}): AsyncGenerator<RefCocoSample> {
  const dataset = opts.dataset ?? 'refcoco';
  const dir = join(root, dataset);
  const refsPath = join(dir, `refs(${opts.splitBy ?? defaultSplitBy(dataset)}).p`);
  const refs = (await readRefs(refsPath)).filter((r) => opts.split === undefined || refSplitMatches(r.split, opts.split));
  const index = await readCocoInstances(join(dir, 'instances.json'));
  const imageDir = opts.imageDir ?? join(root, 'images', 'mscoco', 'images', 'train2014');
  yield* loadEach(refs, async (r) => {
    const ann = index.annotationsById.get(r.annId);
    if (!ann) throw new KvlensInputError(`ann_id ${r.annId} is not in ${index.path}`, r.where);
    const img = index.imagesById.get(r.imageId);
    if (!img) throw new KvlensInputError(`image_id ${r.imageId} is not in ${index.path}`, r.where);
    const path = join(imageDir, img.fileName);
    await checkCocoImageSize(img, path, index.path);
    // LAVT's ground truth: the polygons' masks summed, pixels equal to 1 kept (see MultiPolygonRule).
    const mask = decodeSegmentation(ann.segmentation, img.height, img.width, `${index.path} annotation ${ann.id}`, 'exactly-once');
    return {
      dataset: 'refcoco', refId: r.refId, annId: r.annId, imageId: r.imageId, categoryId: r.categoryId, split: r.split,
      image: { kind: 'path', path }, width: img.width, height: img.height, sentences: r.sentences, bbox: ann.bbox, mask,
    };
  }, opts);
}
