// Streaming cross-image statistics of image keys per (layer, image-token position).
//
// Definition (recorded in key_variance.json): for layer l and grid position p, with k_{n} in R^D the key of image n
// at p (D = kvHeads x dHead, head-major, post-RoPE as cached),
//
//   var_{l,p} = sum_d (1/N) sum_n (k_{n,d} - mean_d)^2  =  (1/N) sum_n ||k_n - mean||^2
//
// the trace of the population covariance = the mean squared L2 distance of a key to the cross-image mean key
// ('sum'); 'mean' divides that by D. Per KV head the same sum runs over that head's dHead dims.
//
// Computed with Welford's update per dimension in float64 (stable for any offset) and merged across shards with
// Chan et al.'s pairwise formula, so a run never holds more than one image's keys plus the running state
// [positions, D] mean and [positions, heads] sum of squared deviations per layer.

import { KvlensInputError, KvlensUsageError } from '../../util/errors.js';

/** The token grid and key layout every image must share. */
export interface KeyGridShape {
  readonly rows: number;
  readonly cols: number;
  readonly heads: number;
  readonly headDim: number;
}

export type VarianceStatistic = 'sum' | 'mean';

export const VARIANCE_DEFINITION =
  'var[l,p] = (1/N) * sum_n ||k[l,n,p] - mean_n k[l,n,p]||^2 = sum over key dims of the population variance across the N images ' +
  '(trace of the cross-image covariance; "mean" divides by the key dimension). k = the cached post-RoPE key at image-token grid ' +
  'position p, concatenated over KV heads (head-major); with identical positions in every image RoPE rotates each position the ' +
  'same way, so the statistic equals the pre-RoPE one.';

/**
 * Welford state of one layer: count N, running mean [P, D] and M2 [P, heads] (sum of squared deviations over each
 * head's dims). P = rows * cols, D = heads * headDim.
 */
export class PositionWelford {
  n = 0;
  readonly mean: Float64Array; // [P, D]
  readonly m2: Float64Array; // [P, heads]

  constructor(readonly shape: KeyGridShape, mean?: Float64Array, m2?: Float64Array, n = 0) {
    const P = shape.rows * shape.cols;
    const D = shape.heads * shape.headDim;
    this.mean = mean ?? new Float64Array(P * D);
    this.m2 = m2 ?? new Float64Array(P * shape.heads);
    if (this.mean.length !== P * D || this.m2.length !== P * shape.heads) throw new KvlensUsageError('PositionWelford: state arrays do not match the grid shape');
    this.n = n;
  }

  get positions(): number {
    return this.shape.rows * this.shape.cols;
  }

  get dim(): number {
    return this.shape.heads * this.shape.headDim;
  }

  /** Add one image's keys: grid [rows, cols, D] (head-major D), as the store and gatherGrid lay them out. */
  add(grid: ArrayLike<number>): void {
    const P = this.positions;
    const { heads, headDim } = this.shape;
    const D = this.dim;
    if (grid.length !== P * D) throw new KvlensUsageError(`key grid has ${grid.length} values, expected ${this.shape.rows} x ${this.shape.cols} x ${D}`);
    this.n++;
    const inv = 1 / this.n;
    const mean = this.mean;
    const m2 = this.m2;
    for (let p = 0; p < P; p++) {
      for (let h = 0; h < heads; h++) {
        let acc = 0;
        const o = p * D + h * headDim;
        for (let j = o; j < o + headDim; j++) {
          const x = grid[j];
          const delta = x - mean[j];
          const m = mean[j] + delta * inv;
          mean[j] = m;
          acc += delta * (x - m);
        }
        m2[p * heads + h] += acc;
      }
    }
  }

  /** Chan's pairwise combination: this becomes the state of both image sets together. */
  merge(other: PositionWelford): void {
    const a = this.shape;
    const b = other.shape;
    if (a.rows !== b.rows || a.cols !== b.cols || a.heads !== b.heads || a.headDim !== b.headDim) {
      throw new KvlensUsageError(`cannot merge key statistics of a ${b.rows}x${b.cols} grid with ${b.heads}x${b.headDim} keys into ${a.rows}x${a.cols} with ${a.heads}x${a.headDim}`);
    }
    if (other.n === 0) return;
    if (this.n === 0) {
      this.mean.set(other.mean);
      this.m2.set(other.m2);
      this.n = other.n;
      return;
    }
    const n = this.n + other.n;
    const wb = other.n / n; // weight of the other mean
    const cross = (this.n * other.n) / n;
    const { heads, headDim } = a;
    const D = this.dim;
    for (let p = 0; p < this.positions; p++) {
      for (let h = 0; h < heads; h++) {
        let sq = 0;
        const o = p * D + h * headDim;
        for (let j = o; j < o + headDim; j++) {
          const delta = other.mean[j] - this.mean[j];
          sq += delta * delta;
          this.mean[j] += delta * wb;
        }
        this.m2[p * heads + h] += other.m2[p * heads + h] + sq * cross;
      }
    }
    this.n = n;
  }

  /** var[p] per position [P] (summed over heads), see VARIANCE_DEFINITION. */
  variance(statistic: VarianceStatistic = 'sum'): Float64Array {
    if (this.n === 0) throw new KvlensUsageError('no images were accumulated, the variance is undefined');
    const { heads } = this.shape;
    const scale = statistic === 'sum' ? 1 / this.n : 1 / (this.n * this.dim);
    const out = new Float64Array(this.positions);
    for (let p = 0; p < out.length; p++) {
      let s = 0;
      for (let h = 0; h < heads; h++) s += this.m2[p * heads + h];
      out[p] = s * scale;
    }
    return out;
  }

  /** Per KV head: [heads][P], each summed (or averaged) over that head's dHead dims. */
  headVariance(statistic: VarianceStatistic = 'sum'): Float64Array[] {
    if (this.n === 0) throw new KvlensUsageError('no images were accumulated, the variance is undefined');
    const { heads, headDim } = this.shape;
    const scale = statistic === 'sum' ? 1 / this.n : 1 / (this.n * headDim);
    return Array.from({ length: heads }, (_, h) => {
      const out = new Float64Array(this.positions);
      for (let p = 0; p < out.length; p++) out[p] = this.m2[p * heads + h] * scale;
      return out;
    });
  }

  clone(): PositionWelford {
    return new PositionWelford(this.shape, Float64Array.from(this.mean), Float64Array.from(this.m2), this.n);
  }
}

/** Where an image's grid came from, for the error message when grids differ. */
export interface GridOrigin {
  readonly imageId: string;
  readonly rows: number;
  readonly cols: number;
}

/**
 * Refuse images whose token grid differs from the first one: positions would not correspond, so a per-position
 * variance across them is meaningless.
 */
export function checkSameGrid(first: GridOrigin, next: GridOrigin, view: string, where?: string): void {
  if (first.rows === next.rows && first.cols === next.cols) return;
  throw new KvlensInputError(
    `image "${next.imageId}" has a ${next.rows} x ${next.cols} "${view}" token grid but image "${first.imageId}" has ${first.rows} x ${first.cols}: ` +
    'the cross-image key variance needs every image at the same token positions. Extract with a fixed --resolution ' +
    '(e.g. kvlens extract --resolution 384) so all images give the same grid, or analyse the "base" view, whose grid is fixed.',
    where ?? `view ${view}`,
  );
}
