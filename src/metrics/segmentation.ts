// Segmentation metrics as pure functions over label maps (flat H*W arrays, row-major).
// "ignore" pixels (a label value in the ground truth) are excluded from every count.

export type Labels = Uint8Array | Uint16Array | Int32Array;

export interface IntersectionUnion {
  readonly intersection: number;
  readonly union: number;
}

function checkSameLength(a: ArrayLike<unknown>, b: ArrayLike<unknown>, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: prediction has ${a.length} pixels, ground truth ${b.length}`);
}

/**
 * Intersection and union of the binary masks (pred == 1) and (gt == positive), skipping pixels whose
 * ground truth equals `ignore`. pred is a 0/1 mask.
 */
export function binaryIntersectionUnion(pred: Uint8Array, gt: Labels, positive = 1, ignore?: number): IntersectionUnion {
  checkSameLength(pred, gt, 'binaryIntersectionUnion');
  let intersection = 0;
  let union = 0;
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    if (g === ignore) continue;
    const p = pred[i] !== 0;
    const t = g === positive;
    if (p && t) intersection++;
    if (p || t) union++;
  }
  return { intersection, union };
}

/** IoU with an explicit convention for the empty case: two empty masks agree perfectly (1). */
export function iou(counts: IntersectionUnion, emptyValue = 1): number {
  return counts.union === 0 ? emptyValue : counts.intersection / counts.union;
}

/** Pixel accuracy of a binary prediction against (gt == positive), ignoring `ignore` pixels. NaN if every pixel is ignored. */
export function pixelAccuracy(pred: Uint8Array, gt: Labels, positive = 1, ignore?: number): number {
  checkSameLength(pred, gt, 'pixelAccuracy');
  let correct = 0;
  let counted = 0;
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    if (g === ignore) continue;
    counted++;
    if ((pred[i] !== 0) === (g === positive)) correct++;
  }
  return counted === 0 ? NaN : correct / counted;
}

/**
 * Confusion accumulator over `numClasses` labels 0..numClasses-1 with an ignore label: the ImageNet-S
 * evaluator's T/P/TP bookkeeping (and any semantic-segmentation mIoU). Predictions outside
 * [0, numClasses) are an input error.
 */
export class ConfusionAccumulator {
  /** gt pixels per class */
  readonly target: Float64Array;
  /** predicted pixels per class */
  readonly predicted: Float64Array;
  /** correctly predicted pixels per class */
  readonly truePositive: Float64Array;
  constructor(readonly numClasses: number, readonly ignore?: number) {
    this.target = new Float64Array(numClasses);
    this.predicted = new Float64Array(numClasses);
    this.truePositive = new Float64Array(numClasses);
  }

  add(pred: Labels, gt: Labels): void {
    checkSameLength(pred, gt, 'ConfusionAccumulator.add');
    const n = this.numClasses;
    for (let i = 0; i < gt.length; i++) {
      const g = gt[i];
      if (g === this.ignore) continue;
      const p = pred[i];
      if (g < 0 || g >= n) throw new Error(`ConfusionAccumulator: ground-truth label ${g} at pixel ${i} outside [0, ${n}) and not the ignore label ${this.ignore}`);
      if (p < 0 || p >= n) throw new Error(`ConfusionAccumulator: predicted label ${p} at pixel ${i} outside [0, ${n})`);
      this.target[g]++;
      this.predicted[p]++;
      if (p === g) this.truePositive[g]++;
    }
  }

  /** IoU per class = TP / (T + P - TP); NaN where the class never occurs in gt or prediction. */
  perClassIoU(): Float64Array {
    const out = new Float64Array(this.numClasses);
    for (let c = 0; c < this.numClasses; c++) {
      const union = this.target[c] + this.predicted[c] - this.truePositive[c];
      out[c] = union === 0 ? NaN : this.truePositive[c] / union;
    }
    return out;
  }

  /**
   * mIoU. 'all': mean over every class, absent classes counting 0 (the ImageNet-S evaluator's
   * convention); 'present': mean over classes with a non-empty union.
   */
  meanIoU(over: 'all' | 'present' = 'present'): number {
    const per = this.perClassIoU();
    let s = 0;
    let count = 0;
    for (const v of per) {
      if (Number.isNaN(v)) { if (over === 'all') count++; continue; }
      s += v; count++;
    }
    return count === 0 ? NaN : s / count;
  }

  /** Overall pixel accuracy over non-ignored pixels. */
  pixelAccuracy(): number {
    let tp = 0; let t = 0;
    for (let c = 0; c < this.numClasses; c++) { tp += this.truePositive[c]; t += this.target[c]; }
    return t === 0 ? NaN : tp / t;
  }
}

/**
 * Few-shot segmentation accumulator with HSNet's conventions: per episode, background (0) and
 * foreground (1) intersection/union are added to the episode's class. mIoU = mean over the evaluated
 * classes of the foreground IoU (sums over that class's episodes); FB-IoU = mean over {bg, fg} of
 * (sum over classes of I) / (sum over classes of U). Unions are clamped to >= 1 as HSNet does.
 */
export class FewShotAccumulator {
  private readonly inter = new Map<number, [number, number]>();
  private readonly union = new Map<number, [number, number]>();
  episodes = 0;

  /** pred: 0/1 mask; gt: 0/1 mask or ignore. */
  add(classId: number, pred: Uint8Array, gt: Labels, ignore?: number): void {
    const bg = binaryIntersectionUnion(invert(pred), gt, 0, ignore);
    const fg = binaryIntersectionUnion(pred, gt, 1, ignore);
    this.addCounts(classId, bg, fg);
  }

  addCounts(classId: number, bg: IntersectionUnion, fg: IntersectionUnion): void {
    const i = this.inter.get(classId) ?? [0, 0];
    const u = this.union.get(classId) ?? [0, 0];
    i[0] += bg.intersection; i[1] += fg.intersection;
    u[0] += bg.union; u[1] += fg.union;
    this.inter.set(classId, i); this.union.set(classId, u);
    this.episodes++;
  }

  /** Merge another accumulator (sums of integer counts: exact, order-independent). */
  merge(other: FewShotAccumulator): void {
    for (const [c, i] of other.inter) {
      const u = other.union.get(c)!;
      const mi = this.inter.get(c) ?? [0, 0];
      const mu = this.union.get(c) ?? [0, 0];
      this.inter.set(c, [mi[0] + i[0], mi[1] + i[1]]);
      this.union.set(c, [mu[0] + u[0], mu[1] + u[1]]);
    }
    this.episodes += other.episodes;
  }

  classes(): number[] {
    return [...this.inter.keys()].sort((a, b) => a - b);
  }

  classIoU(classId: number): number {
    const i = this.inter.get(classId);
    const u = this.union.get(classId);
    if (!i || !u) return NaN;
    return i[1] / Math.max(u[1], 1);
  }

  /**
   * mIoU over `classIds` when given (HSNet: the fold's classes, index_select of its buffers; a class that got no
   * episode has I = U = 0 and counts 0 / max(0, 1) = 0), else over the classes that had episodes.
   */
  meanIoU(classIds?: readonly number[]): number {
    const cs = classIds ? [...new Set(classIds)] : this.classes();
    if (cs.length === 0) return NaN;
    return cs.reduce((s, c) => s + (this.inter.has(c) ? this.classIoU(c) : 0), 0) / cs.length;
  }

  fbIoU(): number {
    let ib = 0; let ifg = 0; let ub = 0; let ufg = 0;
    for (const c of this.classes()) {
      const i = this.inter.get(c)!; const u = this.union.get(c)!;
      ib += i[0]; ifg += i[1]; ub += u[0]; ufg += u[1];
    }
    if (this.episodes === 0) return NaN;
    return (ib / Math.max(ub, 1) + ifg / Math.max(ufg, 1)) / 2;
  }

  toJSON(): { inter: [number, [number, number]][]; union: [number, [number, number]][]; episodes: number } {
    return { inter: [...this.inter], union: [...this.union], episodes: this.episodes };
  }

  static fromJSON(j: ReturnType<FewShotAccumulator['toJSON']>): FewShotAccumulator {
    const a = new FewShotAccumulator();
    for (const [c, v] of j.inter) a.inter.set(c, [v[0], v[1]]);
    for (const [c, v] of j.union) a.union.set(c, [v[0], v[1]]);
    a.episodes = j.episodes;
    return a;
  }
}

/** 1 - pred as a 0/1 mask, so background can be scored as its own "class" 0 (pred==1 <=> predicted bg). */
function invert(pred: Uint8Array): Uint8Array {
  const out = new Uint8Array(pred.length);
  for (let i = 0; i < pred.length; i++) out[i] = pred[i] ? 0 : 1;
  return out;
}

/**
 * Cumulative ("overall") IoU accumulator: sum of intersections / sum of unions over samples
 * (RefCOCO's oIoU / cIoU), alongside the mean of per-sample IoUs (mIoU).
 */
export class OverallIoUAccumulator {
  intersection = 0;
  union = 0;
  private sumIoU = 0;
  count = 0;

  add(counts: IntersectionUnion, emptyValue = 1): void {
    this.intersection += counts.intersection;
    this.union += counts.union;
    this.sumIoU += iou(counts, emptyValue);
    this.count++;
  }

  overallIoU(): number {
    return this.union === 0 ? NaN : this.intersection / this.union;
  }

  meanIoU(): number {
    return this.count === 0 ? NaN : this.sumIoU / this.count;
  }
}

/**
 * Co-segmentation metrics of Amir et al. over a set of images: Jaccard = mean over images of the
 * foreground IoU; precision = mean over images of pixel accuracy.
 */
export function cosegJaccardPrecision(preds: Uint8Array[], gts: Labels[], positive = 1, ignore?: number): { jaccard: number; precision: number } {
  if (preds.length !== gts.length) throw new Error(`cosegJaccardPrecision: ${preds.length} predictions for ${gts.length} ground truths`);
  if (preds.length === 0) return { jaccard: NaN, precision: NaN };
  let j = 0;
  let p = 0;
  for (let i = 0; i < preds.length; i++) {
    j += iou(binaryIntersectionUnion(preds[i], gts[i], positive, ignore));
    p += pixelAccuracy(preds[i], gts[i], positive, ignore);
  }
  return { jaccard: j / preds.length, precision: p / preds.length };
}
