// Several prepared prompts' images as ONE image-path input: the real (unpadded) tiles of the anyres families, or the
// patch rows of Qwen, concatenated once. A single prompt whose pixels are already exactly that is passed as a view
// (no copy) — the hot path of one-image extraction.

import type { PreparedInputs } from '../../preprocess/load.js';
import { tensor, type Tensor } from '../../tensor/tensor.js';
import { KvlensUsageError } from '../../util/errors.js';
import type { Size } from '../../preprocess/anyres.js';

/** (height, width) per image of a prompt, flat. */
export function flatSizes(p: PreparedInputs): number[] {
  if (!p.imageSizes) throw new KvlensUsageError('prepared inputs without imageSizes');
  return Array.from(p.imageSizes.data, Number);
}

/** pixelValues [images, maxTiles, C, S, S] of every prompt -> [sum real tiles, C, S, S] and the flat sizes. */
export function anyresPixelBatch(prompts: readonly PreparedInputs[], tilesFor: (s: Size) => number): { pixelValues: Tensor; geometry: number[] } {
  const geometry = prompts.flatMap(flatSizes);
  const pieces: Float32Array[] = [];
  let tileShape: number[] | undefined;
  let total = 0;
  for (const p of prompts) {
    const pv = p.pixelValues!;
    if (pv.shape.length !== 5) throw new KvlensUsageError(`pixelValues must be [images, tiles, C, S, S], got [${pv.shape.join(', ')}]`);
    const [n, maxTiles, ...tile] = pv.shape;
    tileShape ??= tile;
    const per = tile.reduce((a, b) => a * b, 1);
    const sizes = flatSizes(p);
    for (let i = 0; i < n; i++) {
      const t = tilesFor({ height: sizes[2 * i], width: sizes[2 * i + 1] });
      if (t > maxTiles) throw new KvlensUsageError(`image ${i}: ${t} tiles expected, pixelValues holds ${maxTiles}`);
      const start = i * maxTiles * per;
      pieces.push((pv.data as Float32Array).subarray(start, start + t * per));
      total += t;
    }
  }
  const shape = [total, ...tileShape!];
  if (pieces.length === 1) return { pixelValues: tensor('float32', shape, pieces[0]), geometry };
  return { pixelValues: tensor('float32', shape, concat(pieces)), geometry };
}

/** [rows_i, ...] tensors -> [sum rows, ...] (a view when there is one). */
export function concatRows(ts: readonly Tensor[]): Tensor {
  if (ts.length === 1) return ts[0];
  const rest = ts[0].shape.slice(1);
  return tensor('float32', [ts.reduce((a, t) => a + t.shape[0], 0), ...rest], concat(ts.map((t) => t.data as Float32Array)));
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
