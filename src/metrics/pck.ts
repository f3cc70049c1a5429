// Percentage of Correct Keypoints (SPair-71k convention): a predicted point is correct iff its Euclidean
// distance to the ground truth is <= alpha * max(bbox width, bbox height) of the TARGET object's box
// (x2 - x1, y2 - y1 in original-image pixels). Both per-point and per-image (per-pair) averages.

export interface Point { readonly x: number; readonly y: number }
/** [x1, y1, x2, y2] */
export type BBox = readonly [number, number, number, number];

export function pckThreshold(bbox: BBox, alpha: number): number {
  return alpha * Math.max(bbox[2] - bbox[0], bbox[3] - bbox[1]);
}

/** Correctness of each predicted point. */
export function pckCorrect(pred: readonly Point[], gt: readonly Point[], threshold: number): boolean[] {
  if (pred.length !== gt.length) throw new Error(`pckCorrect: ${pred.length} predictions for ${gt.length} keypoints`);
  return pred.map((p, i) => Math.hypot(p.x - gt[i].x, p.y - gt[i].y) <= threshold);
}

/** Accumulates per-point and per-image PCK over pairs. */
export class PckAccumulator {
  correct = 0;
  points = 0;
  private sumImage = 0;
  images = 0;

  /** Add one pair's correctness flags. A pair with no keypoints is skipped (no per-image value exists). */
  add(flags: readonly boolean[]): void {
    if (flags.length === 0) return;
    const c = flags.filter(Boolean).length;
    this.correct += c;
    this.points += flags.length;
    this.sumImage += c / flags.length;
    this.images++;
  }

  perPoint(): number {
    return this.points === 0 ? NaN : this.correct / this.points;
  }

  perImage(): number {
    return this.images === 0 ? NaN : this.sumImage / this.images;
  }
}
