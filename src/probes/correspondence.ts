// Semantic correspondence (SPair-71k): each source keypoint picks the source token containing it,
// finds the cosine nearest neighbour among the target tokens, and predicts that token's centre mapped
// to target-image pixels. Scored by PCK@alpha with alpha * max(w, h) of the target bbox.
//
// Coordinates: continuous image frame of the ORIGINAL image, origin at the top-left corner of the
// top-left pixel, x right, y down; keypoints used as given in the annotation. The token grid tiles the
// image uniformly (squash resize) over the fraction `extent` it covers (grid.ts: a 27x27 SigLIP grid reads 378 of the
// 384 px tile), so x maps to column floor(x * cols / (ex * W)) and a token's centre to ((c + 0.5) * ex * W / cols, ...).

import { z } from 'zod';
import { normalizeRows, rowDot } from '../linalg/knn.js';
import { PckAccumulator, pckCorrect, pckThreshold, type BBox, type Point } from '../metrics/pck.js';
import { KvlensInputError } from '../util/errors.js';
import { checkGrid, tokenCentre, tokenOfPoint, type FeatureGrid } from './grid.js';
import type { MetricValue, ProbeResult } from './results.js';

export const CorrespondenceConfigSchema = z.object({
  alphas: z.array(z.number().positive()).default([0.1]),
  similarity: z.enum(['cosine', 'dot']).default('cosine'),
});
export type CorrespondenceConfig = z.infer<typeof CorrespondenceConfigSchema>;

export interface ImageSize { readonly width: number; readonly height: number }

export interface CorrespondencePair {
  readonly source: FeatureGrid;
  readonly target: FeatureGrid;
  readonly sourceSize: ImageSize;
  readonly targetSize: ImageSize;
  readonly sourceKeypoints: readonly Point[];
  readonly targetKeypoints: readonly Point[];
  /** Target object box [x1, y1, x2, y2] in original target pixels. */
  readonly targetBBox: BBox;
  readonly category?: string;
}

/** Predicted target points for the source keypoints. */
export function transferKeypoints(pair: CorrespondencePair, similarity: 'cosine' | 'dot' = 'cosine'): Point[] {
  checkGrid(pair.source, 'correspondence source');
  checkGrid(pair.target, 'correspondence target');
  const { source: s, target: t } = pair;
  if (s.dim !== t.dim) throw new KvlensInputError(`source dim ${s.dim} != target dim ${t.dim}`, 'correspondence');
  const dim = s.dim;
  const sd = similarity === 'cosine' ? normalizeRows(s.data, dim) : s.data;
  const td = similarity === 'cosine' ? normalizeRows(t.data, dim) : t.data;
  const nt = t.rows * t.cols;
  return pair.sourceKeypoints.map((kp) => {
    const { row, col } = tokenOfPoint(kp.x, kp.y, pair.sourceSize.width, pair.sourceSize.height, s.rows, s.cols, s.extent);
    const si = row * s.cols + col;
    let best = 0; let bestS = -Infinity;
    for (let k = 0; k < nt; k++) {
      const v = rowDot(sd, si, td, k, dim);
      if (v > bestS) { bestS = v; best = k; }
    }
    return tokenCentre(Math.floor(best / t.cols), best % t.cols, pair.targetSize.width, pair.targetSize.height, t.rows, t.cols, t.extent);
  });
}

/** Run over pairs; PCK per point and per image for each alpha, plus per-category per-image PCK. */
export async function runCorrespondenceProbe(pairs: Iterable<CorrespondencePair> | AsyncIterable<CorrespondencePair>, config: Partial<CorrespondenceConfig> = {}): Promise<ProbeResult> {
  const cfg = CorrespondenceConfigSchema.parse(config);
  const overall = cfg.alphas.map(() => new PckAccumulator());
  const perCategory = new Map<string, PckAccumulator[]>();
  for await (const pair of pairs) {
    const pred = transferKeypoints(pair, cfg.similarity);
    cfg.alphas.forEach((alpha, a) => {
      const flags = pckCorrect(pred, pair.targetKeypoints, pckThreshold(pair.targetBBox, alpha));
      overall[a].add(flags);
      if (pair.category !== undefined) {
        const accs = perCategory.get(pair.category) ?? cfg.alphas.map(() => new PckAccumulator());
        accs[a].add(flags);
        perCategory.set(pair.category, accs);
      }
    });
  }
  const metrics: MetricValue[] = [];
  cfg.alphas.forEach((alpha, a) => {
    metrics.push({ metric: `PCK@${alpha}.point`, value: overall[a].perPoint(), n: overall[a].points });
    metrics.push({ metric: `PCK@${alpha}.image`, value: overall[a].perImage(), n: overall[a].images });
    for (const cat of [...perCategory.keys()].sort()) {
      const acc = perCategory.get(cat)![a];
      metrics.push({ metric: `PCK@${alpha}.image.${cat}`, value: acc.perImage(), n: acc.images });
    }
  });
  return {
    task: 'spair-correspondence',
    metrics,
    protocol: {
      benchmark: 'SPair-71k',
      matching: `source keypoint -> the token containing it -> ${cfg.similarity} nearest target token -> its centre in target pixels (no feature upsampling)`,
      coordinates: 'original-image pixels, continuous frame with origin at the top-left image corner; each token covers the exact pixel box its patch reads (grid extent; the uncovered strip past the last patch belongs to the last token)',
      threshold: 'correct iff distance <= alpha * max(x2-x1, y2-y1) of the target bbox (DIFT convention, original resolution)',
      averaging: 'point = total correct / total keypoints; image = mean over pairs of per-pair accuracy; per category: image averaging',
      alphas: cfg.alphas,
    },
  };
}
