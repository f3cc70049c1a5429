// One entry point over every loader: `iterateDataset(name, root, options)` yields that dataset's typed samples lazily.
import { KvlensInputError } from '../util/errors.js';
import { iterateBdd10k } from './loaders/bdd10k.js';
import type { BddSelection } from './loaders/bdd10k-attributes.js';
import { iterateBlink } from './loaders/blink.js';
import { iterateCoco } from './loaders/coco.js';
import { iterateDavis } from './loaders/davis.js';
import { iterateImageNetS } from './loaders/imagenet-s.js';
import { iterateMme } from './loaders/mme.js';
import { iterateMsrc } from './loaders/msrc.js';
import { iteratePascal5i } from './loaders/pascal5i.js';
import { iteratePope } from './loaders/pope.js';
import { iterateRefCoco, type RefDataset } from './loaders/refcoco.js';
import { iterateRefCocoParquet } from './loaders/refcoco-parquet.js';
import { iterateSpair } from './loaders/spair.js';
import { DATASET_NAMES } from './types.js';
import type { AnySample, DatasetName, LoaderOptions, PopeSplit } from './types.js';

export * from './types.js';

/** The options the CLI can pass to any loader; each loader reads the ones it knows (defaults in the loaders). */
export interface GenericDatasetOptions extends LoaderOptions {
  split?: string;
  fold?: number;
  variant?: number;
  /** refcoco: refcoco | refcoco+ | refcocog; blink: a sub-task list (comma-separated). */
  subset?: string;
  splitBy?: string;
  imageRoot?: string;
  /** bdd10k: keep the images whose BDD frame attributes match (time of day, scene, weather). */
  select?: BddSelection;
  /** bdd10k: Scalabel label files with the frame attributes (default: found under the root). */
  attributeFiles?: readonly string[];
}

export function isDatasetName(s: string): s is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(s);
}

export function iterateDataset(name: DatasetName, root: string, o: GenericDatasetOptions = {}): AsyncGenerator<AnySample> {
  const base: LoaderOptions = { onProblem: o.onProblem, limit: o.limit };
  switch (name) {
    case 'pascal5i': return iteratePascal5i(root, { ...base, fold: o.fold ?? 0, split: (o.split ?? 'val') as 'trn' | 'val' });
    case 'msrc': return iterateMsrc(root, { ...base, groups: o.subset?.split(',') });
    case 'imagenet-s': {
      const variant = (o.variant ?? 50) as 50 | 300 | 919;
      if (![50, 300, 919].includes(variant)) throw new KvlensInputError(`ImageNet-S variant must be 50, 300 or 919, got ${o.variant}`);
      return iterateImageNetS(root, { ...base, variant, split: (o.split ?? 'validation') as 'validation' | 'train-semi' });
    }
    case 'refcoco': return iterateRefCoco(root, { ...base, dataset: (o.subset ?? 'refcoco') as RefDataset, splitBy: o.splitBy, split: o.split, imageDir: o.imageRoot });
    case 'refcoco-parquet': return iterateRefCocoParquet(root, { ...base, split: o.split });
    case 'spair': return iterateSpair(root, { ...base, split: (o.split ?? 'test') as 'trn' | 'val' | 'test' });
    case 'davis': return iterateDavis(root, { ...base, split: o.split });
    case 'coco': return iterateCoco(root, { ...base, split: o.split });
    case 'pope': return iteratePope(root, { ...base, split: (o.split ?? 'random') as PopeSplit, imageRoot: o.imageRoot });
    case 'mme': return iterateMme(root, { ...base, tasks: o.subset?.split(',') });
    case 'blink': return iterateBlink(root, { ...base, split: (o.split ?? 'val') as 'val' | 'test', subtasks: o.subset?.split(',') });
    case 'bdd10k': return iterateBdd10k(root, { ...base, split: o.split, select: o.select, attributeFiles: o.attributeFiles });
  }
}
