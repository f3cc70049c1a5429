// POPE: output/coco/coco_pope_<split>.json, which are JSON LINES ({"question_id", "image", "text", "label"} per line),
// over COCO val2014 images. Images are looked up under imageRoot by the 2014 name, then by id in val2017/train2017.
import { join } from 'node:path';
import { describeValue, KvlensInputError } from '../../util/errors.js';
import { expectNumber, expectObject, expectString, isFile, loadEach, streamLines } from '../io.js';
import type { LoaderOptions, PopeSample, PopeSplit } from '../types.js';
import { resolveCocoImage } from './coco.js';

export const POPE_SPLITS: PopeSplit[] = ['random', 'popular', 'adversarial'];

export interface PopeOptions extends LoaderOptions {
  split?: PopeSplit;
  /** COCO root or the val2014 folder itself; default: the POPE root. */
  imageRoot?: string;
}

export async function popeFile(root: string, split: PopeSplit): Promise<string> {
  const nested = join(root, 'output', 'coco', `coco_pope_${split}.json`);
  return (await isFile(nested)) ? nested : join(root, `coco_pope_${split}.json`);
}

export async function* iteratePope(root: string, opts: PopeOptions = {}): AsyncGenerator<PopeSample> {
  const split = opts.split ?? 'random';
  if (!POPE_SPLITS.includes(split)) throw new KvlensInputError(`POPE split must be one of ${POPE_SPLITS.join('/')}, got ${split}`);
  const path = await popeFile(root, split);
  const imageRoot = opts.imageRoot ?? root;
  yield* loadEach(streamLines(path, `POPE ${split} questions`), async ({ line, lineNo }) => {
    const where = `${path} line ${lineNo}`;
    let raw: unknown;
    try { raw = JSON.parse(line); } catch (e) {
      throw new KvlensInputError(`not a JSON object (POPE files are JSON Lines: one object per line): ${(e as Error).message}`, where);
    }
    const o = expectObject(raw, where, 'question');
    const label = expectString(o, 'label', where).trim().toLowerCase();
    if (label !== 'yes' && label !== 'no') throw new KvlensInputError(`label must be "yes" or "no", got ${describeValue(o.label)}`, where);
    const imageFile = expectString(o, 'image', where);
    const imagePath = await resolveCocoImage(imageRoot, imageFile);
    if (!imagePath) throw new KvlensInputError(`image ${imageFile} not found under ${imageRoot} (nor val2014/, val2017/, train2017/)`, where);
    return {
      dataset: 'pope', split, questionId: expectNumber(o, 'question_id', where), imageFile, image: { kind: 'path', path: imagePath },
      question: expectString(o, 'text', where), answer: label,
    };
  }, opts);
}
