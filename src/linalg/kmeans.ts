// Seeded k-means (k-means++ initialisation, Lloyd iterations, best of several restarts) and the elbow
// rule of Amir et al. 2021 for choosing k. Rows are [n, dim] row-major Float32Array.

import { Rng } from '../util/random.js';

export interface KMeansOptions {
  readonly maxIterations: number;
  /** Independent restarts; the lowest objective wins (faiss' nredo). */
  readonly restarts: number;
  readonly seed: number;
}

export const DEFAULT_KMEANS: KMeansOptions = { maxIterations: 100, restarts: 3, seed: 0 };

export interface KMeansResult {
  /** [k, dim] */
  readonly centroids: Float32Array;
  readonly k: number;
  /** Cluster of each row. [n] */
  readonly assignment: Int32Array;
  /** Sum of squared distances of rows to their centroid. */
  readonly inertia: number;
}

function sqDist(x: Float32Array, xo: number, c: Float32Array, co: number, dim: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) { const d = x[xo + j] - c[co + j]; s += d * d; }
  return s;
}

/** Nearest centroid of every row; returns the inertia. */
export function assignToCentroids(x: Float32Array, dim: number, centroids: Float32Array, k: number, out: Int32Array): number {
  const n = x.length / dim;
  let inertia = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestD = Infinity;
    for (let c = 0; c < k; c++) {
      const d = sqDist(x, i * dim, centroids, c * dim, dim);
      if (d < bestD) { bestD = d; best = c; }
    }
    out[i] = best;
    inertia += bestD;
  }
  return inertia;
}

function kmeansPlusPlus(x: Float32Array, n: number, dim: number, k: number, rng: Rng): Float32Array {
  const centroids = new Float32Array(k * dim);
  const first = rng.int(n);
  centroids.set(x.subarray(first * dim, first * dim + dim), 0);
  const closest = new Float64Array(n);
  for (let i = 0; i < n; i++) closest[i] = sqDist(x, i * dim, centroids, 0, dim);
  for (let c = 1; c < k; c++) {
    let total = 0;
    for (let i = 0; i < n; i++) total += closest[i];
    let pick = n - 1;
    if (total > 0) {
      let r = rng.uniform() * total;
      for (let i = 0; i < n; i++) { r -= closest[i]; if (r < 0) { pick = i; break; } }
    } else pick = rng.int(n);
    centroids.set(x.subarray(pick * dim, pick * dim + dim), c * dim);
    for (let i = 0; i < n; i++) closest[i] = Math.min(closest[i], sqDist(x, i * dim, centroids, c * dim, dim));
  }
  return centroids;
}

function lloyd(x: Float32Array, n: number, dim: number, k: number, init: Float32Array, maxIterations: number): KMeansResult {
  const centroids = init;
  const assignment = new Int32Array(n).fill(-1);
  const next = new Int32Array(n);
  const sums = new Float64Array(k * dim);
  const counts = new Int32Array(k);
  let inertia = Infinity;
  for (let it = 0; it < maxIterations; it++) {
    inertia = assignToCentroids(x, dim, centroids, k, next);
    let changed = 0;
    for (let i = 0; i < n; i++) if (next[i] !== assignment[i]) changed++;
    assignment.set(next);
    if (changed === 0) break;
    sums.fill(0); counts.fill(0);
    for (let i = 0; i < n; i++) {
      const c = assignment[i];
      counts[c]++;
      for (let j = 0; j < dim; j++) sums[c * dim + j] += x[i * dim + j];
    }
    for (let c = 0; c < k; c++) {
      if (counts[c] === 0) continue; // empty cluster keeps its centroid
      for (let j = 0; j < dim; j++) centroids[c * dim + j] = sums[c * dim + j] / counts[c];
    }
  }
  inertia = assignToCentroids(x, dim, centroids, k, assignment);
  return { centroids, k, assignment, inertia };
}

/** k-means on rows x [n, dim]. Deterministic for a given seed. */
export function kmeans(x: Float32Array, dim: number, k: number, options: Partial<KMeansOptions> = {}): KMeansResult {
  const opt = { ...DEFAULT_KMEANS, ...options };
  const n = x.length / dim;
  if (!Number.isInteger(n) || n === 0) throw new Error(`kmeans: ${x.length} values is not a positive multiple of dim ${dim}`);
  if (k < 1 || k > n) throw new Error(`kmeans: k=${k} must be in [1, ${n}]`);
  const rng = new Rng(opt.seed);
  let best: KMeansResult | null = null;
  for (let r = 0; r < opt.restarts; r++) {
    const result = lloyd(x, n, dim, k, kmeansPlusPlus(x, n, dim, k, rng), opt.maxIterations);
    if (!best || result.inertia < best.inertia) best = result;
  }
  return best!;
}

export interface ElbowOptions extends KMeansOptions {
  readonly maxK: number;
  /** Stop increasing k once meanInertia(k) > ratio * meanInertia(k-1) (Amir et al.: 0.975). */
  readonly ratio: number;
}

export const DEFAULT_ELBOW: ElbowOptions = { ...DEFAULT_KMEANS, maxK: 14, ratio: 0.975 };

/**
 * Amir et al.'s elbow: fit k = 1, 2, ... and stop at the first k whose objective is not at least
 * (1 - ratio) better than k-1's, keeping that last fit (as their loop does), or at maxK.
 */
export function kmeansElbow(x: Float32Array, dim: number, options: Partial<ElbowOptions> = {}): KMeansResult {
  const opt = { ...DEFAULT_ELBOW, ...options };
  const n = x.length / dim;
  let prev: KMeansResult | null = null;
  for (let k = 1; k <= Math.min(opt.maxK, n); k++) {
    const fit = kmeans(x, dim, k, { ...opt, seed: opt.seed + k });
    if (prev && fit.inertia > opt.ratio * prev.inertia) return fit;
    prev = fit;
  }
  return prev!;
}
