// HF `rescale` + `normalize` on uint8 pixels, in numpy's precision: rescale multiplies in float64 and casts to
// float32 (image_transforms.rescale); normalize subtracts a float32 mean and divides by a float32 std in float32.
// Output is channels-first, the layout pixel_values use.

import type { RgbImage } from './image.js';

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
