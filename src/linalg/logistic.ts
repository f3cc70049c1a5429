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

function columnStats(x: Float32Array, n: number, dim: number, standardize: boolean): { mean: Float64Array; invStd: Float64Array } {
  const mean = new Float64Array(dim);
  const invStd = new Float64Array(dim).fill(1);
  if (!standardize) return { mean, invStd };
  const sq = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const off = i * dim;
    for (let j = 0; j < dim; j++) { const v = x[off + j]; mean[j] += v; sq[j] += v * v; }
  }
  for (let j = 0; j < dim; j++) {
    mean[j] /= n;
    const variance = sq[j] / n - mean[j] * mean[j];
    invStd[j] = variance > 1e-12 ? 1 / Math.sqrt(variance) : 1; // constant column: leave unscaled
  }
  return { mean, invStd };
}

/**
 * Fit on rows x [n, dim] (row-major) with labels y [n] in {0,1}. Deterministic (zero init, no sampling).
 */
export function fitLogistic(x: Float32Array, y: Uint8Array, dim: number, options: Partial<LogisticOptions> = {}): LogisticModel {
  const opt = { ...DEFAULT_LOGISTIC, ...options };
  const n = y.length;
  if (x.length !== n * dim) throw new Error(`fitLogistic: x has ${x.length} values, expected ${n}x${dim}`);
  if (n === 0) throw new Error('fitLogistic: no training rows');
  const { mean, invStd } = columnStats(x, n, dim, opt.standardize);
  const margins = new Float64Array(n);
  const resid = new Float64Array(n);
  const rawW = new Float64Array(dim);
  const accum = new Float64Array(dim);
  // params = [w (standardised space) ..., b]
  const objective = (params: Float64Array, grad: Float64Array): number => {
    let shift = params[dim];
    for (let j = 0; j < dim; j++) { rawW[j] = params[j] * invStd[j]; shift -= rawW[j] * mean[j]; }
    let loss = 0;
    let sumResid = 0;
    for (let i = 0; i < n; i++) {
      const off = i * dim;
      let z = shift;
      for (let j = 0; j < dim; j++) z += rawW[j] * x[off + j];
      const sign = y[i] ? 1 : -1;
      const m = sign * z;
      margins[i] = m;
      loss += softplusNeg(m);
      // d loss_i / d z = -sign * sigmoid(-m)
      const r = -sign * sigmoid(-m);
      resid[i] = r;
      sumResid += r;
    }
    accum.fill(0);
    for (let i = 0; i < n; i++) {
      const r = resid[i];
      if (r === 0) continue;
      const off = i * dim;
      for (let j = 0; j < dim; j++) accum[j] += r * x[off + j];
    }
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

/** P(y=1) for every row of x [n, dim]. */
export function predictLogistic(model: LogisticModel, x: Float32Array, dim: number): Float32Array {
  const n = x.length / dim;
  const out = new Float32Array(n);
  const w = model.weights;
  for (let i = 0; i < n; i++) {
    const off = i * dim;
    let z = model.bias;
    for (let j = 0; j < dim; j++) z += w[j] * x[off + j];
    out[i] = sigmoid(z);
  }
  return out;
}
