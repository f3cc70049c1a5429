// Few-shot foreground segmentation (Pascal-5i): per episode, an L2-regularised logistic regression is
// trained on the k support images' token features with token labels from the downsampled masks, and
// predicts the query's token foreground probabilities, which are upsampled bilinearly to the label map
// and thresholded. Scored with HSNet's conventions (per-class accumulated fg IoU -> mIoU, and FB-IoU).

import { z } from 'zod';
import { fitLogistic, predictLogistic } from '../linalg/logistic.js';
import { FewShotAccumulator, binaryIntersectionUnion, type IntersectionUnion } from '../metrics/segmentation.js';
import { Rng } from '../util/random.js';
import { KvlensInputError } from '../util/errors.js';
import { checkGrid, checkLabelMap, tokenLabelsByArea, upsampleBilinear, TOKEN_IGNORE, type FeatureGrid, type LabelMap } from './grid.js';
import type { ProbeResult } from './results.js';

export const FewShotConfigSchema = z.object({
  shots: z.number().int().positive().default(5),
  episodes: z.number().int().positive().default(1000),
  seed: z.number().int().default(0),
  /** scikit-learn C (inverse L2 strength) on standardised features. */
  C: z.number().positive().default(1),
  maxIterations: z.number().int().positive().default(100),
  fgFraction: z.number().min(0).max(1).default(0.5),
  ignoreFraction: z.number().min(0).max(1).default(0.5),
  threshold: z.number().min(0).max(1).default(0.5),
  /** Pixel value that is excluded from scoring and from token labels (VOC: 255). */
  ignoreLabel: z.number().int().default(255),
});
export type FewShotConfig = z.infer<typeof FewShotConfigSchema>;

/** One (image, class) entry of a fold list: the image contains the class. */
export interface FewShotItem {
  readonly imageId: string;
  readonly classId: number;
}

export interface Episode {
  readonly index: number;
  readonly classId: number;
  readonly query: string;
  readonly supports: string[];
}

/** Features plus the image's class-label map (VOC: 0 bg, 1..20 classes, 255 ignore). */
export interface FewShotSample {
  readonly features: FeatureGrid;
  readonly labels: LabelMap;
}

export type SampleLoader<S> = (imageId: string) => S | Promise<S>;

/**
 * HSNet-style episodes: episode i's query is items[i % items.length] (the fold list cycled in order),
 * supports are `shots` distinct images of the same class other than the query, drawn with a seeded RNG.
 */
export function sampleEpisodes(items: readonly FewShotItem[], episodes: number, shots: number, seed: number): Episode[] {
  if (items.length === 0) throw new KvlensInputError('no (image, class) items to sample episodes from', 'fewshot');
  const byClass = new Map<number, string[]>();
  for (const it of items) {
    const list = byClass.get(it.classId) ?? [];
    if (!list.includes(it.imageId)) list.push(it.imageId);
    byClass.set(it.classId, list);
  }
  const rng = new Rng(seed);
  const out: Episode[] = [];
  for (let i = 0; i < episodes; i++) {
    const q = items[i % items.length];
    const pool = byClass.get(q.classId)!.filter((id) => id !== q.imageId);
    if (pool.length < shots) throw new KvlensInputError(`class ${q.classId} has ${pool.length} images besides query ${q.imageId}; ${shots} supports needed`, 'fewshot');
    out.push({ index: i, classId: q.classId, query: q.imageId, supports: rng.sample(pool.length, shots).map((k) => pool[k]) });
  }
  return out;
}

/** Token labels for an episode's class: fg = pixels of classId, ignore = ignoreLabel. */
export function episodeTokenLabels(sample: FewShotSample, classId: number, cfg: FewShotConfig): Uint8Array {
  const { rows, cols } = sample.features;
  return tokenLabelsByArea(sample.labels, rows, cols, (v) => v === classId, (v) => v === cfg.ignoreLabel, { fgFraction: cfg.fgFraction, ignoreFraction: cfg.ignoreFraction }, sample.features.extent);
}

/** Query foreground probability per token [rows*cols] from support samples. */
export function predictQueryTokens(supports: readonly FewShotSample[], query: FeatureGrid, classId: number, cfg: FewShotConfig): Float32Array {
  const dim = query.dim;
  const rowsX: Float32Array[] = [];
  const labels: number[] = [];
  for (const s of supports) {
    if (s.features.dim !== dim) throw new KvlensInputError(`support feature dim ${s.features.dim} != query dim ${dim}`, 'fewshot');
    const tl = episodeTokenLabels(s, classId, cfg);
    for (let t = 0; t < tl.length; t++) {
      if (tl[t] === TOKEN_IGNORE) continue;
      rowsX.push(s.features.data.subarray(t * dim, (t + 1) * dim));
      labels.push(tl[t]);
    }
  }
  const tokens = query.rows * query.cols;
  if (labels.length === 0) return new Float32Array(tokens); // every support token ignored: predict background
  const x = new Float32Array(labels.length * dim);
  rowsX.forEach((r, i) => x.set(r, i * dim));
  const model = fitLogistic(x, Uint8Array.from(labels), dim, { C: cfg.C, lbfgs: { maxIterations: cfg.maxIterations, gradTolerance: 1e-4 } });
  return predictLogistic(model, query.data, dim);
}

export interface EpisodeCounts {
  readonly classId: number;
  readonly bg: IntersectionUnion;
  readonly fg: IntersectionUnion;
}

/** Run one episode: train on supports, predict the query, score at the query label map's resolution. */
export function runEpisode(supports: readonly FewShotSample[], query: FewShotSample, classId: number, cfg: FewShotConfig): EpisodeCounts {
  checkGrid(query.features, 'fewshot query');
  checkLabelMap(query.labels, 'fewshot query');
  for (const s of supports) { checkGrid(s.features, 'fewshot support'); checkLabelMap(s.labels, 'fewshot support'); }
  const probs = predictQueryTokens(supports, query.features, classId, cfg);
  const { height, width, data } = query.labels;
  const up = upsampleBilinear({ rows: query.features.rows, cols: query.features.cols, data: probs, extent: query.features.extent }, height, width);
  const pred = new Uint8Array(height * width);
  const predBg = new Uint8Array(height * width);
  const gt = new Uint8Array(height * width);
  for (let i = 0; i < pred.length; i++) {
    pred[i] = up[i] >= cfg.threshold ? 1 : 0;
    predBg[i] = 1 - pred[i];
    gt[i] = data[i] === cfg.ignoreLabel ? 255 : data[i] === classId ? 1 : 0;
  }
  return { classId, fg: binaryIntersectionUnion(pred, gt, 1, 255), bg: binaryIntersectionUnion(predBg, gt, 0, 255) };
}

/** Run a list of episodes sequentially, loading samples through `load`. */
export async function runEpisodes(episodes: readonly Episode[], load: SampleLoader<FewShotSample>, cfg: FewShotConfig): Promise<FewShotAccumulator> {
  const acc = new FewShotAccumulator();
  for (const ep of episodes) {
    const supports = await Promise.all(ep.supports.map((id) => load(id)));
    const query = await load(ep.query);
    const c = runEpisode(supports, query, ep.classId, cfg);
    acc.addCounts(c.classId, c.bg, c.fg);
  }
  return acc;
}

export function fewShotProtocol(cfg: FewShotConfig): Record<string, unknown> {
  return {
    benchmark: 'Pascal-5i',
    episodes: cfg.episodes, shots: cfg.shots, seed: cfg.seed,
    episodeSampler: 'HSNet: query = fold list cycled in order; supports = distinct same-class images excluding the query, seeded (HSNet draws with replacement)',
    classifier: `L2-regularised logistic regression, C=${cfg.C} (scikit-learn convention), per-dimension standardisation from the support tokens, L-BFGS from zero (max ${cfg.maxIterations} iterations), unweighted classes`,
    tokenLabels: `area fractions in the token's pixel box: ignore if ignore pixels > ${cfg.ignoreFraction}, else fg if fg/(fg+bg) > ${cfg.fgFraction}`,
    prediction: `token probabilities upsampled bilinearly (half-pixel centres) to the query label map, fg iff p >= ${cfg.threshold}`,
    evaluationResolution: 'the label map given (original image size; HSNet default is 400x400)',
    metric: 'mIoU = mean over the fold list\'s classes of sum-I/max(sum-U, 1) of fg across the class episodes (a class without episodes counts 0, as HSNet\'s index_select over the fold classes); FB-IoU = mean of bg and fg sum-I/sum-U over all episodes (HSNet)',
    ignoreLabel: cfg.ignoreLabel,
  };
}

/** `classIds`: the run's classes (those of its fold list); HSNet averages over all of them, episodes or not. */
export function fewShotResult(acc: FewShotAccumulator, cfg: FewShotConfig, classIds?: readonly number[]): ProbeResult {
  const metrics = [
    { metric: 'mIoU', value: acc.meanIoU(classIds), n: acc.episodes },
    { metric: 'FB-IoU', value: acc.fbIoU(), n: acc.episodes },
    ...acc.classes().map((c) => ({ metric: `IoU.class${c}`, value: acc.classIoU(c), n: acc.episodes })),
  ];
  return { task: 'pascal5i-fewshot', metrics, protocol: fewShotProtocol(cfg) };
}

/** Sample episodes from a fold list and run them (single thread). */
export async function runFewShotProbe(items: readonly FewShotItem[], load: SampleLoader<FewShotSample>, config: Partial<FewShotConfig> = {}): Promise<ProbeResult> {
  const cfg = FewShotConfigSchema.parse(config);
  const episodes = sampleEpisodes(items, cfg.episodes, cfg.shots, cfg.seed);
  return fewShotResult(await runEpisodes(episodes, load, cfg), cfg, items.map((it) => it.classId));
}

/** Pascal-5i's four folds (fold i holds VOC classes 5i+1..5i+5). */
export const PASCAL5I_FOLDS = [0, 1, 2, 3] as const;

/**
 * Which fold lists a Pascal-5i probe reads:
 *   'all'     the paper's protocol: each fold's val list is its own run (episodes per fold, supports drawn from the same
 *             fold list, as HSNet's test does) and the headline mIoU / FB-IoU is the unweighted mean over the four folds;
 *   0..3      one fold's val list;
 *   'pooled'  every fold's val and trn lists pooled into one run (small synthetic sets only: not a Pascal-5i number).
 */
export const FoldSchema = z.union([z.number().int().min(0).max(3), z.literal('all'), z.literal('pooled')]);
export type FoldChoice = z.infer<typeof FoldSchema>;
export const DEFAULT_FOLD: FoldChoice = 'all';

/** One run's (image, class) entries: a fold's list, or the pooled lists. */
export interface FoldItems {
  readonly fold: number | 'pooled';
  readonly items: readonly FewShotItem[];
}

/**
 * Pascal-5i's headline numbers from per-fold results: mIoU and FB-IoU are the unweighted means over the folds (HSNet
 * reports the mean of the four fold mIoUs); each fold's own numbers and every class IoU (classes are disjoint across
 * folds) are kept as extra metrics. A single result is returned as it is.
 */
export function meanOverFolds(folds: readonly { fold: number | 'pooled'; result: ProbeResult }[]): ProbeResult {
  if (folds.length === 0) throw new KvlensInputError('no fold results to average', 'fewshot');
  if (folds.length === 1) return { ...folds[0].result, protocol: { ...folds[0].result.protocol, folds: [folds[0].fold] } };
  const value = (r: ProbeResult, m: string): number => r.metrics.find((x) => x.metric === m)?.value ?? NaN;
  const count = (r: ProbeResult): number => r.metrics.find((x) => x.metric === 'mIoU')?.n ?? 0;
  const avg = (m: string): number => folds.reduce((s, f) => s + value(f.result, m), 0) / folds.length;
  const n = folds.reduce((s, f) => s + count(f.result), 0);
  return {
    task: 'pascal5i-fewshot',
    metrics: [
      { metric: 'mIoU', value: avg('mIoU'), n },
      { metric: 'FB-IoU', value: avg('FB-IoU'), n },
      ...folds.flatMap((f) => [
        { metric: `mIoU.fold${f.fold}`, value: value(f.result, 'mIoU'), n: count(f.result) },
        { metric: `FB-IoU.fold${f.fold}`, value: value(f.result, 'FB-IoU'), n: count(f.result) },
      ]),
      ...folds.flatMap((f) => f.result.metrics.filter((m) => m.metric.startsWith('IoU.class'))),
    ],
    protocol: { ...folds[0].result.protocol, folds: folds.map((f) => f.fold), aggregation: 'mIoU and FB-IoU: unweighted mean over the folds of each fold\'s own number (episodes per fold)' },
  };
}

/** Run every fold's episodes (each fold its own seeded sampler, as HSNet's per-fold test runs) and average the folds. */
export async function runFewShotFolds(folds: readonly FoldItems[], load: SampleLoader<FewShotSample>, config: Partial<FewShotConfig> = {}): Promise<ProbeResult> {
  const results: { fold: number | 'pooled'; result: ProbeResult }[] = [];
  for (const f of folds) results.push({ fold: f.fold, result: await runFewShotProbe(f.items, load, config) });
  return meanOverFolds(results);
}
