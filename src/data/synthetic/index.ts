// generateSynthetic(name, root, {seed, n}): writes a small dataset in the real on-disk layout of `name`, deterministic
// from the seed. `kvlens demo` and the loader tests use it. Returns the generator's ground truth.
import { KvlensInputError } from '../../util/errors.js';
import type { DatasetName } from '../types.js';
import { synthCoco, synthPope, synthRefCoco, synthRefCocoParquet } from './coco.js';
import { synthBlink, synthMme } from './qa.js';
import { synthBdd10k } from './bdd10k.js';
import { synthDavis, synthImageNetS, synthMsrc, synthPascal5i, type SynthOptions } from './segmentation.js';
import { synthSpair } from './spair.js';

export type { SynthOptions } from './segmentation.js';

export async function generateSynthetic(name: DatasetName, root: string, opts: SynthOptions = {}): Promise<{ truth: unknown }> {
  switch (name) {
    case 'pascal5i': return synthPascal5i(root, opts);
    case 'msrc': return synthMsrc(root, opts);
    case 'imagenet-s': return synthImageNetS(root, opts);
    case 'bdd10k': return synthBdd10k(root, opts);
    case 'davis': return synthDavis(root, opts);
    case 'coco': return synthCoco(root, opts);
    case 'refcoco': return synthRefCoco(root, opts);
    case 'refcoco-parquet': return synthRefCocoParquet(root, opts);
    case 'pope': return synthPope(root, opts);
    case 'spair': return synthSpair(root, opts);
    case 'mme': return synthMme(root, opts);
    case 'blink': return synthBlink(root, opts);
    default: throw new KvlensInputError(`no synthetic generator for dataset "${String(name)}"`);
  }
}
