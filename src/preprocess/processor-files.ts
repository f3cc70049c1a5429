// Where a checkpoint keeps its processor settings, as transformers resolves them. Saves up to 4.5x write the image
// processor to preprocessor_config.json and the processor's own kwargs (image_token, patch_size, ...) to
// processor_config.json; newer saves nest the image processor inside processor_config.json under "image_processor"
// (and the video processor under "video_processor", else video_preprocessor_config.json). transformers reads the
// nested dict first and falls back to preprocessor_config.json; so does kvlens, and it says which file it used.
// kvlens has no video path, so video processor settings are not read.

import { join } from 'node:path';
import { KvlensInputError } from '../util/errors.js';
import { readJsonFileIfExists } from '../util/json.js';

/** Keys of processor_config.json that hold a sub-processor's settings rather than the processor's own kwargs. */
const NESTED = ['image_processor', 'video_processor', 'feature_extractor', 'tokenizer'];

export interface ProcessorFiles {
  /** The image processor's settings. */
  readonly image: Readonly<Record<string, unknown>>;
  /** Where they came from: "<dir>/processor_config.json (image_processor)" or "<dir>/preprocessor_config.json". */
  readonly imageSource: string;
  /** The file holding them (hashed into a feature store's identity). */
  readonly imageFile: string;
  /** processor_config.json's own kwargs (nested sub-processor settings removed); {} when the file is absent. */
  readonly processor: Readonly<Record<string, unknown>>;
  /** Sources that were present but not used, each with why (e.g. a preprocessor_config.json the nested dict shadows). */
  readonly notes: readonly string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export async function readProcessorFiles(dir: string): Promise<ProcessorFiles> {
  const procPath = join(dir, 'processor_config.json');
  const prePath = join(dir, 'preprocessor_config.json');
  const proc = await readJsonFileIfExists(procPath);
  if (proc !== undefined && !isObject(proc)) throw new KvlensInputError('expected a JSON object', procPath);
  const pre = await readJsonFileIfExists(prePath);
  if (pre !== undefined && !isObject(pre)) throw new KvlensInputError('expected a JSON object', prePath);
  const processor = Object.fromEntries(Object.entries(proc ?? {}).filter(([k]) => !NESTED.includes(k)));
  const nested = proc?.image_processor;
  if (nested !== undefined && nested !== null) {
    if (!isObject(nested)) throw new KvlensInputError('field "image_processor": expected an object of image-processor settings', procPath);
    const notes = pre && JSON.stringify(pre) !== JSON.stringify(nested)
      ? [`${prePath} differs from processor_config.json's "image_processor" and was not used (transformers reads the nested settings first)`]
      : [];
    return { image: nested, imageSource: `${procPath} (image_processor)`, imageFile: procPath, processor, notes };
  }
  if (!pre) throw new KvlensInputError('no image-processor settings: neither preprocessor_config.json nor an "image_processor" entry in processor_config.json', dir);
  return { image: pre, imageSource: prePath, imageFile: prePath, processor, notes: [] };
}

/**
 * image_processor_type names a slow processor or its "Fast" twin (transformers >= 4.4x saves either). kvlens
 * computes the slow processor's arithmetic (PIL resize) for both; transformers' fast class resizes with
 * torchvision, which differs by small amounts, so a note says so.
 */
export function imageProcessorKind(type: string, accepted: readonly string[], where: string): { base: string; note?: string } {
  const base = type.endsWith('Fast') ? type.slice(0, -'Fast'.length) : type;
  if (!accepted.includes(base)) {
    throw new KvlensInputError(`field "image_processor_type" is "${type}", expected ${accepted.flatMap((a) => [a, `${a}Fast`]).join(' or ')}`, where);
  }
  return base === type ? { base } : { base, note: `${where}: image_processor_type "${type}": kvlens computes ${base}'s PIL arithmetic; transformers' fast processor resizes with torchvision and its pixels differ slightly` };
}
