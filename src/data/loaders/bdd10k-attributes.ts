// BDD's own frame attributes (weather, scene, time of day) for BDD10K images, read from BDD's Scalabel label files, and
// the scene selection the paper's prefix experiment uses (night + highway, paper-protocols.md §5.5).
//
// A Scalabel label file is one JSON array of frames: { name: "<stem>.jpg", attributes: { weather, scene, timeofday },
// labels: [...] } (ucbdrive/bdd-data doc/format.md). The 100K detection files carry the attributes; the 10K images are
// matched to them by file stem. Files are streamed frame by frame (the 100K train file is ~1 GB): only name and attributes
// are kept, so memory stays bounded by the number of frames, not the file size.
//
// Searched under the dataset root (current, then older releases), train and val both (a 10K val image may be a 100K
// train frame): labels/det_20/det_{train,val}.json, labels/bdd100k_labels_images_{train,val}.json,
// labels/sem_seg/polygons/sem_seg_{train,val}.json. Or give the files explicitly. The first file that names a frame wins.
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { KvlensInputError } from '../../util/errors.js';
import { isFile } from '../io.js';

/** The attribute values BDD defines (format.md); 'undefined' is BDD's own "not labelled" value. */
export const BDD_ATTRIBUTE_VALUES = {
  weather: ['rainy', 'snowy', 'clear', 'overcast', 'undefined', 'partly cloudy', 'foggy'],
  scene: ['tunnel', 'residential', 'parking lot', 'undefined', 'city street', 'gas stations', 'highway'],
  timeofday: ['daytime', 'night', 'dawn/dusk', 'undefined'],
} as const;
export type BddAttributeName = keyof typeof BDD_ATTRIBUTE_VALUES;
export const BDD_ATTRIBUTE_NAMES = Object.keys(BDD_ATTRIBUTE_VALUES) as BddAttributeName[];

export type BddAttributes = Partial<Record<BddAttributeName, string>>;

/** Accepted values per attribute (an image is selected iff every listed attribute has one of its values). */
export type BddSelection = Partial<Record<BddAttributeName, readonly string[]>>;

/** The paper's Table 4 subset (paper-protocols.md §5.5, [SEED]): night-time highway scenes. */
export const NIGHT_HIGHWAY: BddSelection = { timeofday: ['night'], scene: ['highway'] };

export interface AttributeIndex {
  /** Frame stem (file name without extension) -> attributes. */
  readonly byStem: Map<string, BddAttributes>;
  /** The files read, in order. */
  readonly files: string[];
}

const stemOf = (name: string): string => name.replace(/^.*\//, '').replace(/\.(jpe?g|png)$/i, '');

/** Check a selection against BDD's value lists (typos would silently select nothing). */
export function validateSelection(sel: BddSelection, where = 'select'): void {
  for (const [k, values] of Object.entries(sel)) {
    if (!(BDD_ATTRIBUTE_NAMES as string[]).includes(k)) throw new KvlensInputError(`unknown BDD attribute "${k}"; expected one of ${BDD_ATTRIBUTE_NAMES.join(', ')}`, where);
    const allowed = BDD_ATTRIBUTE_VALUES[k as BddAttributeName] as readonly string[];
    for (const v of values ?? []) {
      if (!allowed.includes(v)) throw new KvlensInputError(`${k}: "${v}" is not a BDD value; expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, `${where}.${k}`);
    }
  }
}

export function matchesSelection(attrs: BddAttributes | undefined, sel: BddSelection): boolean {
  for (const [k, values] of Object.entries(sel)) {
    if (!values || values.length === 0) continue;
    const v = attrs?.[k as BddAttributeName];
    if (v === undefined || !values.includes(v)) return false;
  }
  return true;
}

/**
 * Streams the frames of one Scalabel JSON array, yielding each top-level element parsed on its own. Strings (and their
 * escapes) are tracked so braces inside names never confuse the depth count.
 */
export async function* streamJsonArray(path: string): AsyncGenerator<unknown> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  let depth = 0;
  let inString = false;
  let escaped = false;
  let started = false;
  let pieces: string[] = [];
  let segStart = -1; // where the current element starts in this chunk (-1: not inside an element)
  let index = 0;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      if (depth > 0) segStart = 0;
      for (let i = 0; i < chunk.length; i++) {
        const ch = chunk[i];
        if (inString) {
          if (escaped) escaped = false;
          else if (ch === '\\') escaped = true;
          else if (ch === '"') inString = false;
          continue;
        }
        if (ch === '"') { inString = true; continue; }
        if (!started) {
          if (ch === '[') { started = true; continue; }
          if (/\s/.test(ch)) continue;
          throw new KvlensInputError(`expected a JSON array of frames, found ${JSON.stringify(ch)} at the start`, path);
        }
        if (ch === '{' || ch === '[') {
          if (depth === 0) { segStart = i; pieces = []; }
          depth++;
        } else if (ch === '}' || ch === ']') {
          if (depth === 0) {
            if (ch === ']') return;
            throw new KvlensInputError(`unbalanced "}" after frame ${index}`, path);
          }
          depth--;
          if (depth === 0) {
            pieces.push(chunk.slice(segStart, i + 1));
            segStart = -1;
            const text = pieces.join('');
            pieces = [];
            try {
              yield JSON.parse(text);
            } catch (e) {
              throw new KvlensInputError(`frame ${index}: malformed JSON (${(e as Error).message})`, path);
            }
            index++;
          }
        }
      }
      if (depth > 0) pieces.push(chunk.slice(segStart));
    }
  } catch (e) {
    if (e instanceof KvlensInputError) throw e;
    throw new KvlensInputError(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  } finally {
    stream.destroy();
  }
  if (!started) throw new KvlensInputError('empty file; expected a JSON array of frames', path);
  throw new KvlensInputError(`truncated: the array of frames is not closed (after frame ${index})`, path);
}

/** Reads name + attributes of every frame of the files (first file naming a frame wins). */
export async function readAttributeFiles(files: readonly string[]): Promise<AttributeIndex> {
  const byStem = new Map<string, BddAttributes>();
  for (const file of files) {
    let k = 0;
    for await (const frame of streamJsonArray(file)) {
      const f = frame as { name?: unknown; attributes?: unknown };
      if (f === null || typeof f !== 'object' || typeof f.name !== 'string') throw new KvlensInputError(`frame ${k}: field "name" must be a string (a Scalabel frame)`, file);
      k++;
      const stem = stemOf(f.name);
      if (byStem.has(stem)) continue;
      const attrs: BddAttributes = {};
      if (f.attributes !== null && typeof f.attributes === 'object') {
        for (const a of BDD_ATTRIBUTE_NAMES) {
          const v = (f.attributes as Record<string, unknown>)[a];
          if (typeof v === 'string' && v !== 'undefined' && v !== '') attrs[a] = v;
        }
      }
      byStem.set(stem, attrs);
    }
  }
  return { byStem, files: [...files] };
}

/** Label files that carry frame attributes, found under the dataset root (base = root or root/bdd100k). */
export async function findAttributeFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const base of [root, join(root, 'bdd100k')]) {
    for (const split of ['val', 'train']) {
      for (const rel of [
        ['labels', 'det_20', `det_${split}.json`],
        ['labels', `bdd100k_labels_images_${split}.json`],
        ['labels', 'sem_seg', 'polygons', `sem_seg_${split}.json`],
      ]) {
        const p = join(base, ...rel);
        if (await isFile(p)) out.push(p);
      }
    }
  }
  return out;
}
