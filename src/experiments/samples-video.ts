// DAVIS 2017 ground truth for label propagation, tied to a feature store: every frame of a sequence, in order, must be
// a store image (resolved as in samples.ts); a sequence with any frame missing is skipped whole (propagation cannot
// jump frames) and its missing frames are reported.
import { iterateDataset, type DatasetName, type DavisSequence } from '../data/index.js';
import type { FeatureStore } from '../store/index.js';
import { KvlensInputError } from '../util/errors.js';
import { StoreImageResolver, type TruthLoadResult } from './samples.js';

export interface VideoTruth {
  readonly name: string;
  /** Frame store ids in video order. */
  readonly frames: string[];
  readonly frameNames: string[];
  /** Annotation PNG per frame (palette indices = object ids), read by the worker. */
  readonly annotations: string[];
}

export async function loadVideoTruth(store: FeatureStore, root: string, opts: { dataset?: DatasetName; split?: string }): Promise<TruthLoadResult<VideoTruth>> {
  const name = opts.dataset ?? 'davis';
  if (name !== 'davis') throw new KvlensInputError(`temporal correspondence reads the DAVIS 2017 layout; dataset "${name}" is not supported`, root);
  const resolver = new StoreImageResolver(store, root);
  const items: VideoTruth[] = [];
  const missing: string[] = [];
  for await (const seq of iterateDataset('davis', root, { split: opts.split ?? 'val' }) as AsyncGenerator<DavisSequence>) {
    const ids = seq.frames.map((f) => resolver.resolve(f.image));
    const absent = seq.frames.filter((_, i) => !ids[i]).map((f) => (f.image.kind === 'path' ? f.image.path : f.image.name));
    if (absent.length) { missing.push(...absent); continue; }
    const unannotated = seq.frames.filter((f) => !f.annotationPath);
    if (unannotated.length) {
      throw new KvlensInputError(`J&F needs an annotation for every frame; frames ${unannotated.slice(0, 3).map((f) => f.name).join(', ')}${unannotated.length > 3 ? ', ...' : ''} have none (use a split that ships all annotations, e.g. val)`, `DAVIS sequence ${seq.name}`);
    }
    items.push({ name: seq.name, frames: ids as string[], frameNames: seq.frames.map((f) => f.name), annotations: seq.frames.map((f) => f.annotationPath!) });
  }
  return { items, missing: [...new Set(missing)] };
}
