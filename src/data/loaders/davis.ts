// DAVIS 2017: ImageSets/2017/<split>.txt, JPEGImages/<res>/<seq>/<frame>.jpg, Annotations/<res>/<seq>/<frame>.png
// (palette PNGs; the value is the object id, 0 = background, 255 = void). One DavisSequence per listed sequence;
// frame masks are read on demand.
import { join } from 'node:path';
import { KvlensInputError } from '../../util/errors.js';
import { checkMaskMatchesImage, isFile, listDir, loadEach, readBytes, readLines, requireDirectory } from '../io.js';
import { decodeLabelPng } from '../png.js';
import type { DavisFrame, DavisSequence, LabelGrid, LoaderOptions } from '../types.js';

export const DAVIS_VOID = 255;

export interface DavisOptions extends LoaderOptions {
  split?: string; // train | val | test-dev ...
  resolution?: string; // 480p | Full-Resolution
  year?: string; // 2017
  /** Annotation folder; Annotations_unsupervised for the unsupervised task. */
  annotations?: string;
}

export async function listDavis(root: string, opts: DavisOptions = {}): Promise<string[]> {
  const list = join(root, 'ImageSets', opts.year ?? '2017', `${opts.split ?? 'val'}.txt`);
  await requireDirectory(join(root, 'JPEGImages', opts.resolution ?? '480p'), 'DAVIS frames');
  return (await readLines(list, 'DAVIS sequence list')).map((l) => l.trim());
}

async function readMask(path: string, frame: DavisFrame): Promise<LabelGrid> {
  const mask = decodeLabelPng(await readBytes(path, 'DAVIS annotation'), path);
  await checkMaskMatchesImage(mask, path, frame.image);
  return mask;
}

export async function loadDavisSequence(root: string, name: string, opts: DavisOptions = {}): Promise<DavisSequence> {
  const res = opts.resolution ?? '480p';
  const imgDir = join(root, 'JPEGImages', res, name);
  const annDir = join(root, opts.annotations ?? 'Annotations', res, name);
  const frameNames = (await listDir(imgDir, `frames of sequence ${name}`)).filter((f) => f.toLowerCase().endsWith('.jpg')).map((f) => f.slice(0, -4));
  if (frameNames.length === 0) throw new KvlensInputError(`sequence ${name} has no .jpg frames`, imgDir);
  const frames: DavisFrame[] = [];
  for (const f of frameNames) {
    const ann = join(annDir, `${f}.png`);
    frames.push({ name: f, image: { kind: 'path', path: join(imgDir, `${f}.jpg`) }, annotationPath: (await isFile(ann)) ? ann : null });
  }
  const first = frames[0];
  if (!first.annotationPath) throw new KvlensInputError(`sequence ${name} has no annotation for its first frame ${first.name}`, annDir);
  const firstMask = await readMask(first.annotationPath, first);
  let numObjects = 0;
  for (let i = 0; i < firstMask.data.length; i++) {
    const v = firstMask.data[i];
    if (v !== DAVIS_VOID && v > numObjects) numObjects = v;
  }
  return {
    dataset: 'davis', name, split: opts.split ?? 'val', frames, numObjects, firstMask,
    async loadMask(i: number) {
      const fr = frames[i];
      if (!fr) throw new KvlensInputError(`frame ${i} out of range (sequence ${name} has ${frames.length})`);
      return fr.annotationPath ? readMask(fr.annotationPath, fr) : null;
    },
  };
}

export async function* iterateDavis(root: string, opts: DavisOptions = {}): AsyncGenerator<DavisSequence> {
  yield* loadEach(await listDavis(root, opts), (n) => loadDavisSequence(root, n, opts), opts);
}
