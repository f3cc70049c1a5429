// HF `rescale` + `normalize` on uint8 pixels, in numpy's precision: rescale multiplies in float64 and casts to
// float32 (image_transforms.rescale); normalize subtracts a float32 mean and divides by a float32 std in float32.
// Output is channels-first, the layout pixel_values use. Also the preprocessor_config.json fields every image
// processor shares (rescale / normalise settings, the PIL resample code) and their parse errors.

import { z } from 'zod';
import { KvlensInputError } from '../util/errors.js';
import type { RgbImage } from './image.js';
import { filterFromPilCode, type ResampleFilter } from './pil-resize.js';

const f = Math.fround;

export interface PixelNormalization {
  readonly doRescale: boolean;
  readonly rescaleFactor: number;
  readonly doNormalize: boolean;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
}

/** Per-byte lookup: 256 float32 values per channel, exactly what numpy produces for each uint8 value. */
export function normalizationTable(n: PixelNormalization): Float32Array[] {
  const tables: Float32Array[] = [];
  for (let c = 0; c < 3; c++) {
    const t = new Float32Array(256);
    const m = f(n.mean[c]);
    const s = f(n.std[c]);
    for (let v = 0; v < 256; v++) {
      let x = n.doRescale ? f(v * n.rescaleFactor) : v;
      if (n.doNormalize) x = f(f(x - m) / s);
      t[v] = x;
    }
    tables.push(t);
  }
  return tables;
}

/** Write an RGB image as normalised float32 [3, height, width] into `out` at `offset`. */
export function writeChw(img: RgbImage, tables: Float32Array[], out: Float32Array, offset: number): void {
  const plane = img.width * img.height;
  for (let c = 0; c < 3; c++) {
    const t = tables[c];
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = t[img.data[3 * i + c]];
  }
}

/** transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, the default of the CLIP-derived processors. */
export const OPENAI_CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** One value for all channels or one per channel (HF accepts both for image_mean / image_std). */
export const channelTriple = z.union([z.number(), z.tuple([z.number(), z.number(), z.number()])]);

/** The rescale / normalise fields of every HF image processor config (null or absent = the processor's default). */
export const normalizationFields = {
  do_rescale: z.boolean().nullish(),
  rescale_factor: z.number().positive().nullish(),
  do_normalize: z.boolean().nullish(),
  image_mean: channelTriple.nullish(),
  image_std: channelTriple.nullish(),
};

type Triple = readonly [number, number, number];
const asTriple = (v: number | readonly number[] | null | undefined, dflt: Triple): [number, number, number] =>
  (v == null ? [dflt[0], dflt[1], dflt[2]] : typeof v === 'number' ? [v, v, v] : [v[0], v[1], v[2]]);

/** PixelNormalization from the parsed fields; rescale 1/255 unless given, mean/std default per processor class. */
export function normalizationFrom(
  c: { do_rescale?: boolean | null; rescale_factor?: number | null; do_normalize?: boolean | null; image_mean?: number | readonly number[] | null; image_std?: number | readonly number[] | null },
  defaults: { readonly mean: Triple; readonly std: Triple },
): PixelNormalization {
  return {
    doRescale: c.do_rescale ?? true,
    rescaleFactor: c.rescale_factor ?? 1 / 255,
    doNormalize: c.do_normalize ?? true,
    mean: asTriple(c.image_mean, defaults.mean),
    std: asTriple(c.image_std, defaults.std),
  };
}

/** The PIL resample code of a processor config (default 3 = bicubic), its error naming the field. */
export function resampleFrom(code: number | null | undefined, where: string): ResampleFilter {
  try {
    return filterFromPilCode(code ?? 3);
  } catch (e) {
    throw new KvlensInputError(`field "resample": ${(e as Error).message}`, where);
  }
}

/** Parse a preprocessor_config.json with a processor's schema; the error names the file and the first bad field. */
export function parseProcessorConfig<S extends z.ZodType>(schema: S, raw: unknown, where: string): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new KvlensInputError(`field "${issue.path.join('.')}": ${issue.message}`, where);
}
