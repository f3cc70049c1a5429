// Zero-shot segmentation by a text query (ImageNet-S semantic segmentation, RefCOCO referring
// expressions): the caller supplies the query's vector from the same tap/layer (e.g. the value of the
// last text token of the class name / expression, [dim]); each image token is scored by dot product
// (or cosine), scores become a per-token foreground strength in [0, 1], which is upsampled bilinearly
// to the label map and cut into a mask.

import { z } from 'zod';
import { ConfusionAccumulator, OverallIoUAccumulator, binaryIntersectionUnion } from '../metrics/segmentation.js';
import { KvlensInputError } from '../util/errors.js';
import { checkGrid, checkLabelMap, upsampleBilinear, type FeatureGrid, type LabelMap } from './grid.js';
import type { ProbeResult } from './results.js';

export const TextQueryConfigSchema = z.object({
  similarity: z.enum(['dot', 'cosine']).default('dot'),
  /**
   * 'minmax': strength = scores min-max normalised over the image, fg iff >= threshold.
   * 'topFraction': the top `fraction` of tokens by score are fg (strength 1), cut at 0.5 after upsampling.
   */
  maskRule: z.enum(['minmax', 'topFraction']).default('minmax'),
  threshold: z.number().min(0).max(1).default(0.5),
  fraction: z.number().gt(0).max(1).default(0.25),
});
export type TextQueryConfig = z.infer<typeof TextQueryConfigSchema>;

export interface TextQuery {
  /** Label written for pixels this query wins (ImageNet-S class id; 1 for a referring expression). */
  readonly classId: number;
  /** [dim] */
  readonly vector: Float32Array;
}

/** Raw similarity of the query to every token. [rows*cols] */
export function scoreTokens(grid: FeatureGrid, query: Float32Array, similarity: 'dot' | 'cosine'): Float32Array {
  if (query.length !== grid.dim) throw new KvlensInputError(`query vector has ${query.length} values, the feature grid has dim ${grid.dim}`, 'text query');
  const n = grid.rows * grid.cols;
  const out = new Float32Array(n);
  let qn = 0;
  for (const v of query) qn += v * v;
  qn = Math.sqrt(qn) || 1;
  for (let t = 0; t < n; t++) {
    let s = 0; let tn = 0;
    const off = t * grid.dim;
    for (let j = 0; j < grid.dim; j++) { const v = grid.data[off + j]; s += v * query[j]; tn += v * v; }
    out[t] = similarity === 'cosine' ? s / (qn * (Math.sqrt(tn) || 1)) : s;
  }
  return out;
}

/** Foreground strength per token in [0, 1] and the cut applied after upsampling. */
export function foregroundStrength(scores: Float32Array, cfg: TextQueryConfig): { strength: Float32Array; cut: number } {
  const n = scores.length;
  const strength = new Float32Array(n);
  if (cfg.maskRule === 'minmax') {
    let lo = Infinity; let hi = -Infinity;
    for (const v of scores) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    // A constant score map carries no localisation: nothing is foreground.
    if (hi > lo) for (let t = 0; t < n; t++) strength[t] = (scores[t] - lo) / (hi - lo);
    return { strength, cut: cfg.threshold };
  }
  const keep = Math.max(1, Math.round(cfg.fraction * n));
  const order = Array.from({ length: n }, (_, t) => t).sort((a, b) => scores[b] - scores[a] || a - b);
  for (let i = 0; i < keep; i++) strength[order[i]] = 1;
  return { strength, cut: 0.5 };
}

/**
 * Label map predicted for the given queries: each pixel takes the class whose upsampled strength is
 * largest, if it reaches that rule's cut; otherwise background 0. [height*width]
 */
export function predictTextQueryLabels(grid: FeatureGrid, queries: readonly TextQuery[], height: number, width: number, cfg: TextQueryConfig): Uint16Array {
  checkGrid(grid, 'text query');
  const out = new Uint16Array(height * width);
  const best = new Float32Array(height * width).fill(-Infinity);
  for (const q of queries) {
    const { strength, cut } = foregroundStrength(scoreTokens(grid, q.vector, cfg.similarity), cfg);
    const up = upsampleBilinear({ rows: grid.rows, cols: grid.cols, data: strength, extent: grid.extent }, height, width);
    for (let i = 0; i < up.length; i++) {
      if (up[i] >= cut && up[i] > best[i]) { best[i] = up[i]; out[i] = q.classId; }
    }
  }
  return out;
}

export function textQueryProtocol(cfg: TextQueryConfig): Record<string, unknown> {
  return {
    similarity: cfg.similarity === 'dot' ? 'raw dot product between the query vector and each token' : 'cosine similarity',
    maskRule: cfg.maskRule === 'minmax' ? `scores min-max normalised per image and query, upsampled bilinearly, fg iff >= ${cfg.threshold}` : `top ${cfg.fraction} of tokens by score are fg, indicator upsampled bilinearly, fg iff >= 0.5`,
    queries: 'supplied by the caller (e.g. last text token of the class name / expression at the same tap)',
  };
}

export interface SemanticSegSample {
  readonly features: FeatureGrid;
  /** Class ids (ImageNet-S: 0 background, 1..N classes, 1000 ignore). */
  readonly labels: LabelMap;
  /** The classes to query for this image (by default the loader passes the classes in its ground truth). */
  readonly queries: readonly TextQuery[];
}

export const SemanticSegConfigSchema = TextQueryConfigSchema.extend({
  /** Number of object classes N; labels are 0..N. */
  numClasses: z.number().int().positive(),
  ignoreLabel: z.number().int().default(1000),
});
export type SemanticSegConfig = z.infer<typeof SemanticSegConfigSchema>;

/** ImageNet-S style semantic segmentation by class-name queries. */
export async function runSemanticSegProbe(samples: Iterable<SemanticSegSample> | AsyncIterable<SemanticSegSample>, config: Partial<SemanticSegConfig> & { numClasses: number }): Promise<ProbeResult> {
  const cfg = SemanticSegConfigSchema.parse(config);
  const acc = new ConfusionAccumulator(cfg.numClasses + 1, cfg.ignoreLabel);
  let images = 0;
  for await (const s of samples) {
    checkLabelMap(s.labels, 'semantic seg');
    acc.add(predictTextQueryLabels(s.features, s.queries, s.labels.height, s.labels.width, cfg), s.labels.data);
    images++;
  }
  return {
    task: 'imagenet-s-semseg',
    metrics: [
      { metric: 'mIoU', value: acc.meanIoU('all'), n: images },
      { metric: 'mIoU.present', value: acc.meanIoU('present'), n: images },
      { metric: 'pixelAccuracy', value: acc.pixelAccuracy(), n: images },
    ],
    protocol: {
      benchmark: 'ImageNet-S', ...textQueryProtocol(cfg),
      metric: `confusion accumulated over all images, gt ${cfg.ignoreLabel} ignored; mIoU = mean over all ${cfg.numClasses + 1} classes incl. background 0 (absent classes count 0, as the ImageNet-S evaluator); mIoU.present over classes with non-empty union`,
    },
  };
}

export interface ReferringSample {
  readonly features: FeatureGrid;
  /** Binary ground truth of the referred object (non-zero = object). */
  readonly labels: LabelMap;
  readonly query: Float32Array;
}

/** RefCOCO-style referring-expression segmentation: mIoU (mean per expression) and overall IoU. */
export async function runReferringSegProbe(samples: Iterable<ReferringSample> | AsyncIterable<ReferringSample>, config: Partial<TextQueryConfig> = {}): Promise<ProbeResult> {
  const cfg = TextQueryConfigSchema.parse(config);
  const acc = new OverallIoUAccumulator();
  for await (const s of samples) {
    checkLabelMap(s.labels, 'referring seg');
    const pred = predictTextQueryLabels(s.features, [{ classId: 1, vector: s.query }], s.labels.height, s.labels.width, cfg);
    const gt = new Uint8Array(s.labels.data.length);
    for (let i = 0; i < gt.length; i++) gt[i] = s.labels.data[i] !== 0 ? 1 : 0;
    acc.add(binaryIntersectionUnion(Uint8Array.from(pred), gt, 1), 0); // LAVT test.py: U == 0 -> this_iou = 0.0
  }
  return {
    task: 'refcoco-refseg',
    metrics: [
      { metric: 'mIoU', value: acc.meanIoU(), n: acc.count },
      { metric: 'oIoU', value: acc.overallIoU(), n: acc.count },
    ],
    protocol: { benchmark: 'RefCOCO', ...textQueryProtocol(cfg), metric: 'mIoU = mean over expressions of IoU (empty pred and gt = 0, as LAVT\'s test.py); oIoU = cumulative intersection / cumulative union' },
  };
}
