// Top principal components by seeded block power iteration on X^T X (the covariance is never formed,
// so D = 3584 costs O(n * D * k) per iteration, not O(D^2)). Used for feature visualisation.

import { Rng } from '../util/random.js';

export interface PcaResult {
  /** Column means. [dim] */
  readonly mean: Float64Array;
  /** Components as rows, unit length, by decreasing variance. [k, dim] */
  readonly components: Float64Array;
  /** Variance along each component. [k] */
  readonly variances: Float64Array;
  readonly k: number;
}

function orthonormalizeRows(m: Float64Array, k: number, dim: number): void {
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < a; b++) {
      let d = 0;
      for (let j = 0; j < dim; j++) d += m[a * dim + j] * m[b * dim + j];
      for (let j = 0; j < dim; j++) m[a * dim + j] -= d * m[b * dim + j];
    }
    let s = 0;
    for (let j = 0; j < dim; j++) s += m[a * dim + j] ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) m[a * dim + j] *= inv;
  }
}

/** PCA of rows x [n, dim]. */
export function pca(x: Float32Array, dim: number, k: number, options: { iterations?: number; seed?: number } = {}): PcaResult {
  const n = x.length / dim;
  if (k < 1 || k > Math.min(n, dim)) throw new Error(`pca: k=${k} must be in [1, ${Math.min(n, dim)}]`);
  const iterations = options.iterations ?? 50;
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += x[i * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= n;
  const rng = new Rng(options.seed ?? 0);
  let basis: Float64Array = new Float64Array(k * dim);
  for (let i = 0; i < basis.length; i++) basis[i] = rng.normal();
  orthonormalizeRows(basis, k, dim);
  const proj = new Float64Array(k);
  const covTimes = (b: Float64Array): Float64Array => {
    // returns (X - mean)^T (X - mean) b^T / n, as rows [k, dim]
    const out = new Float64Array(k * dim);
    for (let i = 0; i < n; i++) {
      const off = i * dim;
      for (let a = 0; a < k; a++) {
        let s = 0;
        for (let j = 0; j < dim; j++) s += (x[off + j] - mean[j]) * b[a * dim + j];
        proj[a] = s;
      }
      for (let a = 0; a < k; a++) {
        const p = proj[a] / n;
        for (let j = 0; j < dim; j++) out[a * dim + j] += p * (x[off + j] - mean[j]);
      }
    }
    return out;
  };
  for (let it = 0; it < iterations; it++) {
    basis = covTimes(basis);
    orthonormalizeRows(basis, k, dim);
  }
  // Rayleigh quotients, then sort by variance (the block may converge out of order).
  const cb = covTimes(basis);
  const variances = new Float64Array(k);
  for (let a = 0; a < k; a++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += cb[a * dim + j] * basis[a * dim + j];
    variances[a] = s;
  }
  const order = Array.from({ length: k }, (_, a) => a).sort((p, q) => variances[q] - variances[p]);
  const components = new Float64Array(k * dim);
  const sortedVar = new Float64Array(k);
  order.forEach((src, dst) => {
    components.set(basis.subarray(src * dim, src * dim + dim), dst * dim);
    sortedVar[dst] = variances[src];
  });
  return { mean, components, variances: sortedVar, k };
}

/** Project rows x [n, dim] onto the components: [n, k]. */
export function pcaTransform(model: PcaResult, x: Float32Array, dim: number): Float32Array {
  const n = x.length / dim;
  const out = new Float32Array(n * model.k);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < model.k; a++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += (x[i * dim + j] - model.mean[j]) * model.components[a * dim + j];
      out[i * model.k + a] = s;
    }
  }
  return out;
}
