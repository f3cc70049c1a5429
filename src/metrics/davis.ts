// DAVIS 2017 semi-supervised metrics, following davis2017-evaluation (metrics.py, evaluation.py, utils.py):
//  - J (region similarity) = IoU of the object's binary masks; 1 when both are empty.
//  - F (boundary F-measure): one-pixel boundary maps (seg2bmap), each dilated by a disk of radius
//    ceil(0.008 * image diagonal); precision = share of predicted boundary pixels within the dilated GT
//    boundary, recall = share of GT boundary pixels within the dilated predicted boundary; the
//    toolkit's conventions for empty boundaries (both empty: P = R = 1; only pred empty: P = 1, R = 0;
//    only GT empty: P = 0, R = 1).
//  - The first and last frames of each sequence are excluded; per object, Mean = nanmean over the
//    remaining frames, Recall = share of frames > 0.5, Decay = mean of the first of 4 temporal bins
//    minus mean of the last; J-Mean and F-Mean average the per-object means over all objects of all
//    sequences; J&F = (J-Mean + F-Mean) / 2.
//  - Void (255) in the GT annotation: the toolkit's reader turns 255 into 0 before splitting objects,
//    so void pixels count as background of every object and are NOT excluded. evaluateDavisSequence
//    reproduces that; the metric functions accept an explicit void mask for other uses.

export interface MaskSize { readonly height: number; readonly width: number }

/** Region similarity J of binary masks (non-zero = inside), skipping void pixels when a void mask is given. */
export function regionJ(gt: Uint8Array, pred: Uint8Array, voidMask?: Uint8Array): number {
  if (gt.length !== pred.length) throw new Error(`regionJ: ${pred.length} predicted pixels vs ${gt.length} ground-truth pixels`);
  let inter = 0;
  let union = 0;
  for (let i = 0; i < gt.length; i++) {
    if (voidMask && voidMask[i]) continue;
    const a = gt[i] !== 0;
    const b = pred[i] !== 0;
    if (a && b) inter++;
    if (a || b) union++;
  }
  return union === 0 ? 1 : inter / union;
}

/**
 * One-pixel boundary map (David Martin's seg2bmap as in the toolkit): a pixel is on the boundary if it
 * differs from its east, south or south-east neighbour; the last row compares only east, the last
 * column only south, and the bottom-right pixel is never a boundary.
 */
export function seg2bmap(mask: Uint8Array, size: MaskSize): Uint8Array {
  const { height: h, width: w } = size;
  const b = new Uint8Array(h * w);
  const at = (y: number, x: number): number => (mask[y * w + x] !== 0 ? 1 : 0);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = at(y, x);
      const e = x + 1 < w ? at(y, x + 1) : 0;
      const so = y + 1 < h ? at(y + 1, x) : 0;
      const se = x + 1 < w && y + 1 < h ? at(y + 1, x + 1) : 0;
      let v: number;
      if (y === h - 1 && x === w - 1) v = 0;
      else if (y === h - 1) v = s ^ e;
      else if (x === w - 1) v = s ^ so;
      else v = (s ^ e) | (s ^ so) | (s ^ se);
      b[y * w + x] = v;
    }
  }
  return b;
}

/** Offsets of skimage.morphology.disk(r): all (dy, dx) with dy^2 + dx^2 <= r^2. */
export function diskOffsets(radius: number): [number, number][] {
  const r = Math.floor(radius);
  const out: [number, number][] = [];
  for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (dy * dy + dx * dx <= radius * radius) out.push([dy, dx]);
  return out;
}

/** Binary dilation by a disk (pixels outside the image are ignored, like cv2.dilate's default border). */
export function dilateDisk(map: Uint8Array, size: MaskSize, radius: number): Uint8Array {
  const { height: h, width: w } = size;
  const out = new Uint8Array(h * w);
  const offsets = diskOffsets(radius);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!map[y * w + x]) continue;
      for (const [dy, dx] of offsets) {
        const yy = y + dy;
        const xx = x + dx;
        if (yy >= 0 && yy < h && xx >= 0 && xx < w) out[yy * w + xx] = 1;
      }
    }
  }
  return out;
}

/**
 * The toolkit's dilation radius: bound_th itself if >= 1, else ceil(bound_th * np.linalg.norm(shape)). numpy's norm
 * is sqrt(h*h + w*w) (exact integer sum, one rounding); Math.hypot can land one ulp high (125.00000000000001 for
 * 35x120), which turns ceil(1.0) into 2.
 */
export function boundaryRadius(size: MaskSize, boundTh = 0.008): number {
  return boundTh >= 1 ? boundTh : Math.ceil(boundTh * Math.sqrt(size.height * size.height + size.width * size.width));
}

/** Boundary F-measure of binary masks (toolkit f_measure). */
export function boundaryF(gt: Uint8Array, pred: Uint8Array, size: MaskSize, options: { boundTh?: number; voidMask?: Uint8Array } = {}): number {
  const n = size.height * size.width;
  if (gt.length !== n || pred.length !== n) throw new Error(`boundaryF: masks must have ${size.height}x${size.width} pixels (got gt ${gt.length}, pred ${pred.length})`);
  const keep = (m: Uint8Array): Uint8Array => {
    if (!options.voidMask) return m;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = m[i] && !options.voidMask[i] ? 1 : 0;
    return out;
  };
  const radius = boundaryRadius(size, options.boundTh ?? 0.008);
  const fgB = seg2bmap(keep(pred), size);
  const gtB = seg2bmap(keep(gt), size);
  const fgDil = dilateDisk(fgB, size, radius);
  const gtDil = dilateDisk(gtB, size, radius);
  let nFg = 0; let nGt = 0; let fgMatch = 0; let gtMatch = 0;
  for (let i = 0; i < n; i++) {
    if (fgB[i]) { nFg++; if (gtDil[i]) fgMatch++; }
    if (gtB[i]) { nGt++; if (fgDil[i]) gtMatch++; }
  }
  let precision: number;
  let recall: number;
  if (nFg === 0 && nGt > 0) { precision = 1; recall = 0; }
  else if (nFg > 0 && nGt === 0) { precision = 0; recall = 1; }
  else if (nFg === 0 && nGt === 0) { precision = 1; recall = 1; }
  else { precision = fgMatch / nFg; recall = gtMatch / nGt; }
  return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
}

export interface DavisStatistics { readonly mean: number; readonly recall: number; readonly decay: number }

function nanMean(xs: readonly number[]): number {
  const ok = xs.filter((v) => !Number.isNaN(v));
  return ok.length === 0 ? NaN : ok.reduce((a, b) => a + b, 0) / ok.length;
}

/** db_statistics: Mean, Recall (> 0.5) and Decay over 4 temporal bins of a per-frame series. */
export function davisStatistics(perFrame: readonly number[]): DavisStatistics {
  const n = perFrame.length;
  const mean = nanMean(perFrame);
  const recall = nanMean(perFrame.map((v) => (Number.isNaN(v) ? NaN : v > 0.5 ? 1 : 0)));
  const ids: number[] = [];
  for (let i = 0; i <= 4; i++) ids.push(Math.round(1 + ((n - 1) * i) / 4 + 1e-10) - 1);
  const bins = [0, 1, 2, 3].map((i) => perFrame.slice(ids[i], ids[i + 1] + 1));
  const decay = nanMean(bins[0]) - nanMean(bins[3]);
  return { mean, recall, decay };
}

export interface DavisObjectResult {
  readonly sequence: string;
  readonly objectId: number;
  /** Per evaluated frame (first and last excluded). */
  readonly j: number[];
  readonly f: number[];
  readonly jStats: DavisStatistics;
  readonly fStats: DavisStatistics;
}

/**
 * Evaluate one sequence. gtFrames and predFrames are label maps (object ids, 0 = background, 255 = void
 * in gt) of the same size, one per frame, in order. Objects are 1..max id of the first GT frame.
 */
export function evaluateDavisSequence(sequence: string, gtFrames: readonly Uint8Array[], predFrames: readonly Uint8Array[], size: MaskSize, boundTh = 0.008): DavisObjectResult[] {
  if (gtFrames.length !== predFrames.length) throw new Error(`DAVIS ${sequence}: ${predFrames.length} predicted frames for ${gtFrames.length} annotated frames`);
  if (gtFrames.length < 3) throw new Error(`DAVIS ${sequence}: needs at least 3 frames (first and last are excluded), got ${gtFrames.length}`);
  let numObjects = 0;
  for (const v of gtFrames[0]) if (v !== 255 && v > numObjects) numObjects = v;
  const results: DavisObjectResult[] = [];
  for (let obj = 1; obj <= numObjects; obj++) {
    const j: number[] = [];
    const f: number[] = [];
    for (let t = 1; t < gtFrames.length - 1; t++) {
      const g = binaryOf(gtFrames[t], obj);
      const p = binaryOf(predFrames[t], obj);
      j.push(regionJ(g, p));
      f.push(boundaryF(g, p, size, { boundTh }));
    }
    results.push({ sequence, objectId: obj, j, f, jStats: davisStatistics(j), fStats: davisStatistics(f) });
  }
  return results;
}

function binaryOf(labels: Uint8Array, id: number): Uint8Array {
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = labels[i] === id ? 1 : 0;
  return out;
}

/** J-Mean, F-Mean and J&F-Mean over all objects of all sequences. */
export function summarizeDavis(objects: readonly DavisObjectResult[]): { jMean: number; fMean: number; jfMean: number; jRecall: number; fRecall: number; jDecay: number; fDecay: number; objects: number } {
  const m = (sel: (o: DavisObjectResult) => number): number => nanMean(objects.map(sel));
  const jMean = m((o) => o.jStats.mean);
  const fMean = m((o) => o.fStats.mean);
  return {
    jMean, fMean, jfMean: (jMean + fMean) / 2,
    jRecall: m((o) => o.jStats.recall), fRecall: m((o) => o.fStats.recall),
    jDecay: m((o) => o.jStats.decay), fDecay: m((o) => o.fStats.decay),
    objects: objects.length,
  };
}
