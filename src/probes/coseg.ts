// Co-segmentation (MSRC) after Amir et al. 2021 ("Deep ViT features as dense visual descriptors"):
// L2-normalised tokens of every image in a set are clustered together with k-means (k from their
// elbow rule), then clusters are voted foreground by the images: an image votes for a cluster that is
// present in it (>= minShare of its tokens) and - when a saliency map is supplied - whose mean saliency
// over those tokens exceeds saliencyThreshold. Clusters voted by >= voteFraction of the images are
// foreground. Token labels are upsampled (nearest) to each image's label map; no GrabCut refinement.
//
// Saliency: LM value tokens have no CLS attention. Default 'none' (the common-cluster criterion: a
// cluster is foreground if it is common to the image set); 'supplied' takes a per-image [rows, cols]
// map from the caller (e.g. text-to-image attention), min-max normalised per image as Amir et al. do.

import { z } from 'zod';
import { kmeans, kmeansElbow, assignToCentroids } from '../linalg/kmeans.js';
import { normalizeRowsInPlace } from '../linalg/knn.js';
import { cosegJaccardPrecision } from '../metrics/segmentation.js';
import { KvlensInputError } from '../util/errors.js';
import { checkGrid, upsampleNearest, type FeatureGrid, type LabelMap, type ScoreGrid } from './grid.js';
import type { ProbeResult } from './results.js';

export const CosegConfigSchema = z.object({
  /** Fixed number of clusters, or null for the elbow rule over k = 1..maxK. */
  k: z.number().int().positive().nullable().default(null),
  maxK: z.number().int().positive().default(14),
  elbowRatio: z.number().positive().default(0.975),
  restarts: z.number().int().positive().default(3),
  maxIterations: z.number().int().positive().default(100),
  /** Fit k-means on every n-th token (Amir et al.: 100 on stride-4 dense maps; LM grids are small). */
  sampleStride: z.number().int().positive().default(1),
  /** Append normalised (x, y) token coordinates times this weight before clustering (0 = off). */
  xyWeight: z.number().min(0).default(0),
  minShare: z.number().min(0).max(1).default(0.02),
  voteFraction: z.number().min(0).max(1).default(0.75),
  saliency: z.enum(['none', 'supplied']).default('none'),
  saliencyThreshold: z.number().default(0.065),
  seed: z.number().int().default(0),
  /** Ground-truth value excluded from scoring (none by default). */
  ignoreLabel: z.number().int().nullable().default(null),
});
export type CosegConfig = z.infer<typeof CosegConfigSchema>;

export interface CosegImage {
  readonly features: FeatureGrid;
  /** Binary ground truth (non-zero = foreground, except ignoreLabel). Only used for scoring. */
  readonly labels: LabelMap;
  readonly saliency?: ScoreGrid;
}

function clusterRows(images: readonly CosegImage[], cfg: CosegConfig): { rows: Float32Array; width: number; counts: number[] } {
  const dim = images[0].features.dim;
  const width = dim + (cfg.xyWeight > 0 ? 2 : 0);
  const counts = images.map((im) => im.features.rows * im.features.cols);
  const rows = new Float32Array(counts.reduce((a, b) => a + b, 0) * width);
  let o = 0;
  for (const im of images) {
    const g = im.features;
    if (g.dim !== dim) throw new KvlensInputError(`all images of a set need one feature dim; got ${g.dim} and ${dim}`, 'coseg');
    for (let t = 0; t < g.rows * g.cols; t++) {
      const row = rows.subarray(o * width, o * width + width);
      row.set(g.data.subarray(t * dim, (t + 1) * dim));
      normalizeRowsInPlace(row.subarray(0, dim), dim);
      if (cfg.xyWeight > 0) {
        row[dim] = (cfg.xyWeight * ((t % g.cols) + 0.5)) / g.cols;
        row[dim + 1] = (cfg.xyWeight * (Math.floor(t / g.cols) + 0.5)) / g.rows;
      }
      o++;
    }
  }
  return { rows, width, counts };
}

function minMax(values: Float32Array): Float32Array {
  let lo = Infinity; let hi = -Infinity;
  for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const out = new Float32Array(values.length);
  if (hi > lo) for (let i = 0; i < values.length; i++) out[i] = (values[i] - lo) / (hi - lo);
  return out;
}

export interface CosegOutput {
  /** Foreground token mask per image [rows*cols]. */
  readonly tokenMasks: Uint8Array[];
  /** Foreground pixel mask per image at its label map size. */
  readonly masks: Uint8Array[];
  readonly k: number;
  readonly foregroundClusters: number[];
}

/** Co-segment one image set. */
export function cosegmentSet(images: readonly CosegImage[], config: Partial<CosegConfig> = {}): CosegOutput {
  const cfg = CosegConfigSchema.parse(config);
  if (images.length === 0) throw new KvlensInputError('empty image set', 'coseg');
  images.forEach((im, i) => checkGrid(im.features, `coseg image ${i}`));
  const { rows, width, counts } = clusterRows(images, cfg);
  const total = counts.reduce((a, b) => a + b, 0);
  const sampled = new Float32Array(Math.ceil(total / cfg.sampleStride) * width);
  for (let i = 0, s = 0; i < total; i += cfg.sampleStride, s++) sampled.set(rows.subarray(i * width, (i + 1) * width), s * width);
  const kmOpts = { restarts: cfg.restarts, maxIterations: cfg.maxIterations, seed: cfg.seed };
  const fit = cfg.k === null
    ? kmeansElbow(sampled, width, { ...kmOpts, maxK: cfg.maxK, ratio: cfg.elbowRatio })
    : kmeans(sampled, width, Math.min(cfg.k, sampled.length / width), kmOpts);
  const assignment = new Int32Array(total);
  assignToCentroids(rows, width, fit.centroids, fit.k, assignment);
  const votes = new Int32Array(fit.k);
  let start = 0;
  images.forEach((im, i) => {
    const n = counts[i];
    const members = new Int32Array(fit.k);
    const salSum = new Float64Array(fit.k);
    const sal = cfg.saliency === 'supplied' ? im.saliency : undefined;
    if (cfg.saliency === 'supplied' && (!sal || sal.data.length !== n)) throw new KvlensInputError(`saliency 'supplied' needs a ${im.features.rows}x${im.features.cols} saliency grid`, `coseg image ${i}`);
    const salNorm = sal ? minMax(sal.data) : undefined;
    for (let t = 0; t < n; t++) {
      const c = assignment[start + t];
      members[c]++;
      if (salNorm) salSum[c] += salNorm[t];
    }
    for (let c = 0; c < fit.k; c++) {
      if (members[c] === 0 || members[c] / n < cfg.minShare) continue;
      if (salNorm && salSum[c] / members[c] <= cfg.saliencyThreshold) continue;
      votes[c]++;
    }
    start += n;
  });
  const needed = Math.ceil(cfg.voteFraction * images.length);
  const foregroundClusters = [...votes.keys()].filter((c) => votes[c] >= needed);
  const fg = new Set(foregroundClusters);
  const tokenMasks: Uint8Array[] = [];
  const masks: Uint8Array[] = [];
  start = 0;
  images.forEach((im, i) => {
    const n = counts[i];
    const tm = new Uint8Array(n);
    for (let t = 0; t < n; t++) tm[t] = fg.has(assignment[start + t]) ? 1 : 0;
    tokenMasks.push(tm);
    masks.push(upsampleNearest(tm, im.features.rows, im.features.cols, im.labels.height, im.labels.width, im.features.extent));
    start += n;
  });
  return { tokenMasks, masks, k: fit.k, foregroundClusters };
}

function binaryGt(labels: LabelMap, ignore: number | null): Uint16Array {
  const out = new Uint16Array(labels.data.length);
  for (let i = 0; i < out.length; i++) out[i] = labels.data[i] === ignore ? 65535 : labels.data[i] !== 0 ? 1 : 0;
  return out;
}

export function cosegProtocol(cfg: CosegConfig): Record<string, unknown> {
  return {
    benchmark: 'MSRC co-segmentation (Amir et al. 2021 protocol, adapted)',
    features: 'tokens L2-normalised' + (cfg.xyWeight > 0 ? `, plus (x, y) in [0,1] times ${cfg.xyWeight}` : ''),
    clustering: cfg.k === null ? `k-means (k-means++, ${cfg.restarts} restarts, <= ${cfg.maxIterations} Lloyd iterations), k by elbow: stop at the first k whose inertia > ${cfg.elbowRatio} x previous, k <= ${cfg.maxK}` : `k-means with fixed k=${cfg.k}`,
    sampleStride: cfg.sampleStride,
    foregroundRule: cfg.saliency === 'none'
      ? `common-cluster vote: an image votes for a cluster holding >= ${cfg.minShare} of its tokens; fg if votes >= ${cfg.voteFraction} of images (a recorded choice, not Amir et al.'s rule: theirs also needs the cluster's mean CLS-attention saliency > ${cfg.saliencyThreshold}, which value tokens lack, so a background shared by the set's images counts as foreground here; saliency 'supplied' gives their rule with a caller's saliency map)`
      : `saliency vote (Amir et al.): an image votes for a present cluster whose mean min-max-normalised supplied saliency > ${cfg.saliencyThreshold}; fg if votes >= ${cfg.voteFraction} of images`,
    upsampling: 'token mask nearest to the label map; no GrabCut',
    metric: 'Jaccard = mean over images of fg IoU (empty vs empty = 1); precision = mean over images of pixel accuracy',
    seed: cfg.seed,
  };
}

/** Co-segment every set and score all images together. */
export function runCosegProbe(sets: readonly (readonly CosegImage[])[], config: Partial<CosegConfig> = {}): ProbeResult {
  const cfg = CosegConfigSchema.parse(config);
  const preds: Uint8Array[] = [];
  const gts: Uint16Array[] = [];
  for (const set of sets) {
    const out = cosegmentSet(set, cfg);
    preds.push(...out.masks);
    gts.push(...set.map((im) => binaryGt(im.labels, cfg.ignoreLabel)));
  }
  const { jaccard, precision } = cosegJaccardPrecision(preds, gts, 1, cfg.ignoreLabel === null ? undefined : 65535);
  return {
    task: 'msrc-coseg',
    metrics: [{ metric: 'Jaccard', value: jaccard, n: preds.length }, { metric: 'precision', value: precision, n: preds.length }],
    protocol: { ...cosegProtocol(cfg), sets: sets.length },
  };
}
