// L2-regularised binary logistic regression on standardised features, fitted with L-BFGS.
//
// Objective (scikit-learn's convention, divided by n for conditioning, same minimiser):
//   (1/n) * [ C * sum_i log(1 + exp(-y_i * (w . z_i + b))) + 0.5 * ||w||^2 ],  y in {-1, +1}
// where z_i = (x_i - mean) / std is the standardised feature row; the bias b is not regularised.
// Standardisation is folded into the weights so the data is never copied: w.z + b = (w/std).x + (b - sum w*mean/std).

import { minimizeLbfgs, type LbfgsOptions } from './lbfgs.js';

export interface LogisticOptions {
  /** Inverse regularisation strength (scikit-learn's C). */
  readonly C: number;
  readonly standardize: boolean;
  readonly lbfgs?: Partial<LbfgsOptions>;
}

export const DEFAULT_LOGISTIC: LogisticOptions = { C: 1, standardize: true, lbfgs: { maxIterations: 100, gradTolerance: 1e-4 } };

export interface LogisticModel {
  /** Weights in RAW feature space (standardisation folded in). [dim] */
  readonly weights: Float64Array;
  readonly bias: number;
  readonly iterations: number;
  readonly converged: boolean;
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** log(1 + exp(-m)) computed without overflow. */
function softplusNeg(m: number): number {
  return m > 0 ? Math.log1p(Math.exp(-m)) : -m + Math.log1p(Math.exp(m));
}

/** Per-feature mean and 1/std of rows x [n, dim]. */
function columnStats(x: Float32Array, n: number, dim: number, standardize: boolean): { mean: Float64Array; invStd: Float64Array } {
  const mean = new Float64Array(dim);
  const invStd = new Float64Array(dim).fill(1);
  if (!standardize) return { mean, invStd };
  const sums = new Float64Array(dim);
  const sqSums = new Float64Array(dim);
  // Two rows per pass over the accumulators (see weightedRowSum for why).
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const o0 = i * dim; const o1 = o0 + dim;
    for (let j = 0; j < dim; j++) {
      const a = x[o0 + j]; const b = x[o1 + j];
      sums[j] += a + b;
      sqSums[j] += a * a + b * b;
    }
  }
  for (; i < n; i++) for (let j = 0; j < dim; j++) { const a = x[i * dim + j]; sums[j] += a; sqSums[j] += a * a; }
  for (let j = 0; j < dim; j++) {
    mean[j] = sums[j] / n;
    const variance = sqSums[j] / n - mean[j] * mean[j];
    invStd[j] = variance > 1e-12 ? 1 / Math.sqrt(variance) : 1; // constant column: leave unscaled
  }
  return { mean, invStd };
}

/**
 * out = x^T w for rows x [n, dim] and weights w [n]. Four rows per pass over `out`: one
 * read-modify-write per four products, about 3x faster in V8 than one row at a time (and no transpose).
 */
function weightedRowSum(x: Float32Array, w: Float64Array, n: number, dim: number, out: Float64Array): void {
  out.fill(0);
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const w0 = w[i]; const w1 = w[i + 1]; const w2 = w[i + 2]; const w3 = w[i + 3];
    const o0 = i * dim; const o1 = o0 + dim; const o2 = o1 + dim; const o3 = o2 + dim;
    for (let j = 0; j < dim; j++) out[j] += w0 * x[o0 + j] + w1 * x[o1 + j] + w2 * x[o2 + j] + w3 * x[o3 + j];
  }
  for (; i < n; i++) {
    const wi = w[i];
    const o = i * dim;
    for (let j = 0; j < dim; j++) out[j] += wi * x[o + j];
  }
}

/**
 * Fit on rows x [n, dim] (row-major) with labels y [n] in {0,1}. Deterministic (zero init, no sampling).
 */
export function fitLogistic(x: Float32Array, y: Uint8Array, dim: number, options: Partial<LogisticOptions> = {}): LogisticModel {
  const opt = { ...DEFAULT_LOGISTIC, ...options };
  const n = y.length;
  if (x.length !== n * dim) throw new Error(`fitLogistic: x has ${x.length} values, expected ${n}x${dim}`);
  if (n === 0) throw new Error('fitLogistic: no training rows');
  const resid = new Float64Array(n);
  const z = new Float64Array(n);
  const rawW = new Float64Array(dim);
  const accum = new Float64Array(dim);
  const { mean, invStd } = columnStats(x, n, dim, opt.standardize);
  // params = [w (standardised space) ..., b]
  const objective = (params: Float64Array, grad: Float64Array): number => {
    let shift = params[dim];
    for (let j = 0; j < dim; j++) { rawW[j] = params[j] * invStd[j]; shift -= rawW[j] * mean[j]; }
    let loss = 0;
    let sumResid = 0;
    rowDots(x, rawW, n, dim, z);
    for (let i = 0; i < n; i++) {
      const sign = y[i] ? 1 : -1;
      const m = sign * (shift + z[i]);
      loss += softplusNeg(m);
      // d loss_i / d z = -sign * sigmoid(-m)
      const r = -sign * sigmoid(-m);
      resid[i] = r;
      sumResid += r;
    }
    weightedRowSum(x, resid, n, dim, accum);
    let reg = 0;
    const scale = opt.C / n;
    for (let j = 0; j < dim; j++) {
      const w = params[j];
      reg += w * w;
      grad[j] = scale * (accum[j] - mean[j] * sumResid) * invStd[j] + w / n;
    }
    grad[dim] = scale * sumResid;
    return scale * loss + (0.5 * reg) / n;
  };
  const result = minimizeLbfgs(objective, new Float64Array(dim + 1), opt.lbfgs);
  const weights = new Float64Array(dim);
  let bias = result.x[dim];
  for (let j = 0; j < dim; j++) { weights[j] = result.x[j] * invStd[j]; bias -= weights[j] * mean[j]; }
  return { weights, bias, iterations: result.iterations, converged: result.converged };
}

/**
 * out[i] = x[i] . w for rows x [n, dim]. Two rows times two columns per step: each weight load
 * serves two rows and the four independent sums pipeline (about 2x a plain loop in V8).
 */
function rowDots(x: Float32Array, w: Float64Array, n: number, dim: number, out: Float64Array): void {
  const dimEven = dim - (dim % 2);
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const o0 = i * dim; const o1 = o0 + dim;
    let a0 = 0; let a1 = 0; let b0 = 0; let b1 = 0;
    for (let j = 0; j < dimEven; j += 2) {
      const w0 = w[j]; const w1 = w[j + 1];
      a0 += w0 * x[o0 + j]; a1 += w1 * x[o0 + j + 1];
      b0 += w0 * x[o1 + j]; b1 += w1 * x[o1 + j + 1];
    }
    if (dimEven < dim) { a0 += w[dimEven] * x[o0 + dimEven]; b0 += w[dimEven] * x[o1 + dimEven]; }
    out[i] = a0 + a1; out[i + 1] = b0 + b1;
  }
  for (; i < n; i++) {
    const o = i * dim;
    let a = 0;
    for (let j = 0; j < dim; j++) a += w[j] * x[o + j];
    out[i] = a;
  }
}

/** P(y=1) for every row of x [n, dim]. */
export function predictLogistic(model: LogisticModel, x: Float32Array, dim: number): Float32Array {
  const n = x.length / dim;
  const z = new Float64Array(n);
  rowDots(x, model.weights, n, dim, z);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sigmoid(model.bias + z[i]);
  return out;
}
