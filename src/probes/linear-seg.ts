// Multi-class linear segmentation probe (BDD10K's 19 train-id classes, paper Table 4 [SEED]): one-vs-rest L2-regularised
// logistic regressions are trained on token features of the training images, with each token labelled by the majority
// class of its pixels; a test image's per-class token probabilities are upsampled bilinearly to its label map and the
// arg-max class is scored with a confusion matrix (mIoU over the classes that occur in ground truth or prediction, as
// mmsegmentation's nan-mean does; pixel accuracy; IoU per class).
//
// Bounded work: at most `maxTrainTokens` labelled training tokens are kept (seeded reservoir sample over the stream of
// training tokens), so the memory and the fit cost do not grow with the number of training images.

import { z } from 'zod';
import { fitLogistic, predictLogistic, type LogisticModel } from '../linalg/logistic.js';
import { ConfusionAccumulator } from '../metrics/segmentation.js';
import { Rng } from '../util/random.js';
import { KvlensInputError } from '../util/errors.js';
import { checkGrid, checkLabelMap, tokenMajorityLabels, upsampleBilinear, TOKEN_IGNORE, type FeatureGrid, type LabelMap } from './grid.js';
import type { MetricValue, ProbeResult } from './results.js';

export const LinearSegConfigSchema = z.object({
  /** Classes 0..numClasses-1 (BDD10K / Cityscapes train ids: 19). */
  numClasses: z.number().int().min(2).max(254).default(19),
  /** Class names for the per-class metrics (default class<k>). */
  classNames: z.array(z.string()).optional(),
  /** Pixel value excluded from token labels and scoring (BDD: 255 = unknown). */
  ignoreLabel: z.number().int().default(255),
  /** scikit-learn C (inverse L2 strength) on standardised features. */
  C: z.number().positive().default(1),
  maxIterations: z.number().int().positive().default(100),
  /** A token is ignored when more than this fraction of its pixels are ignore pixels. */
  ignoreFraction: z.number().min(0).max(1).default(0.5),
  /** Training tokens kept (seeded reservoir sample). */
  maxTrainTokens: z.number().int().positive().default(20000),
  seed: z.number().int().default(0),
});
export type LinearSegConfig = z.infer<typeof LinearSegConfigSchema>;

export interface LabelledGrid {
  readonly features: FeatureGrid;
  /** Class-id label map (0..numClasses-1, ignoreLabel). */
  readonly labels: LabelMap;
}

export interface LinearSegModel {
  readonly dim: number;
  /** One binary model per class seen in training (undefined: never predicted). */
  readonly perClass: (LogisticModel | undefined)[];
  readonly trainTokens: number;
  readonly trainImages: number;
}

/** Fit the one-vs-rest probe on a stream of training images. */
export async function fitLinearSeg(train: Iterable<LabelledGrid> | AsyncIterable<LabelledGrid>, cfg: LinearSegConfig): Promise<LinearSegModel> {
  const rng = new Rng(cfg.seed);
  let dim = -1;
  let x = new Float32Array(0);
  const y = new Uint8Array(cfg.maxTrainTokens);
  let seen = 0;
  let images = 0;
  for await (const im of train) {
    checkGrid(im.features, 'linear-seg training image');
    checkLabelMap(im.labels, 'linear-seg training image');
    if (dim < 0) { dim = im.features.dim; x = new Float32Array(cfg.maxTrainTokens * dim); }
    if (im.features.dim !== dim) throw new KvlensInputError(`training feature dim ${im.features.dim} != ${dim}`, 'linear-seg');
    images++;
    const labels = tokenMajorityLabels(im.labels, im.features, cfg.numClasses, cfg.ignoreLabel, cfg.ignoreFraction);
    for (let t = 0; t < labels.length; t++) {
      if (labels[t] === TOKEN_IGNORE) continue;
      const slot = seen < cfg.maxTrainTokens ? seen : rng.int(seen + 1);
      seen++;
      if (slot >= cfg.maxTrainTokens) continue;
      x.set(im.features.data.subarray(t * dim, (t + 1) * dim), slot * dim);
      y[slot] = labels[t];
    }
  }
  if (images === 0) throw new KvlensInputError('no training images', 'linear-seg');
  const n = Math.min(seen, cfg.maxTrainTokens);
  if (n === 0) throw new KvlensInputError('every training token is ignored (no labelled pixels)', 'linear-seg');
  const xs = x.subarray(0, n * dim);
  const present = new Set(y.subarray(0, n));
  const perClass: (LogisticModel | undefined)[] = [];
  for (let c = 0; c < cfg.numClasses; c++) {
    if (!present.has(c)) { perClass.push(undefined); continue; }
    const yc = new Uint8Array(n);
    for (let i = 0; i < n; i++) yc[i] = y[i] === c ? 1 : 0;
    perClass.push(fitLogistic(xs, yc, dim, { C: cfg.C, lbfgs: { maxIterations: cfg.maxIterations, gradTolerance: 1e-4 } }));
  }
  return { dim, perClass, trainTokens: n, trainImages: images };
}

/** Per-pixel arg-max class of the upsampled per-class probabilities. [height*width] */
export function predictLinearSeg(model: LinearSegModel, features: FeatureGrid, height: number, width: number): Uint8Array {
  checkGrid(features, 'linear-seg test image');
  if (features.dim !== model.dim) throw new KvlensInputError(`test feature dim ${features.dim} != training dim ${model.dim}`, 'linear-seg');
  const best = new Float32Array(height * width).fill(-Infinity);
  const out = new Uint8Array(height * width);
  model.perClass.forEach((m, c) => {
    if (!m) return;
    const p = predictLogistic(m, features.data, features.dim);
    const up = upsampleBilinear({ rows: features.rows, cols: features.cols, data: p, extent: features.extent }, height, width);
    for (let i = 0; i < up.length; i++) if (up[i] > best[i]) { best[i] = up[i]; out[i] = c; }
  });
  return out;
}

export function linearSegProtocol(cfg: LinearSegConfig): Record<string, unknown> {
  return {
    classifier: `one-vs-rest L2-regularised logistic regression per class, C=${cfg.C} (scikit-learn convention), per-dimension standardisation, L-BFGS (max ${cfg.maxIterations} iterations)`,
    tokenLabels: `majority class of the token's pixels; ignored if > ${cfg.ignoreFraction} of them are ${cfg.ignoreLabel}`,
    trainTokens: `at most ${cfg.maxTrainTokens} labelled tokens, seeded reservoir sample (seed ${cfg.seed})`,
    prediction: 'per-class token probabilities upsampled bilinearly to the label map; arg-max class per pixel',
    metric: `mIoU = mean IoU over the classes with a non-empty union (of ${cfg.numClasses}); pixel accuracy; ignore ${cfg.ignoreLabel}`,
  };
}

/** Train on `train`, score on `test`. */
export async function runLinearSegProbe(train: Iterable<LabelledGrid> | AsyncIterable<LabelledGrid>, test: Iterable<LabelledGrid> | AsyncIterable<LabelledGrid>, config: Partial<LinearSegConfig> = {}): Promise<ProbeResult> {
  const cfg = LinearSegConfigSchema.parse(config);
  const model = await fitLinearSeg(train, cfg);
  const acc = new ConfusionAccumulator(cfg.numClasses, cfg.ignoreLabel);
  let images = 0;
  for await (const im of test) {
    checkLabelMap(im.labels, 'linear-seg test image');
    acc.add(predictLinearSeg(model, im.features, im.labels.height, im.labels.width), im.labels.data);
    images++;
  }
  if (images === 0) throw new KvlensInputError('no test images', 'linear-seg');
  const per = acc.perClassIoU();
  const metrics: MetricValue[] = [
    { metric: 'mIoU', value: acc.meanIoU('present'), n: images },
    { metric: 'pixelAccuracy', value: acc.pixelAccuracy(), n: images },
  ];
  per.forEach((v, c) => { if (!Number.isNaN(v)) metrics.push({ metric: `IoU.${cfg.classNames?.[c] ?? `class${c}`}`, value: v, n: images }); });
  return { task: 'linear-seg', metrics, protocol: { ...linearSegProtocol(cfg), trainImages: model.trainImages, trainTokens: model.trainTokens, testImages: images } };
}
