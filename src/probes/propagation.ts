// Temporal correspondence (DAVIS 2017 semi-supervised): label propagation from the first frame's mask
// with token affinities, following DINO's eval_video_segmentation.py:
//  - tokens L2-normalised; affinity exp(cos / temperature) between each target token and every token
//    of the context (the first frame + the n most recent frames, which carry their own soft predictions);
//  - only context tokens within a (2r+1)^2 square neighbourhood (Chebyshev radius r in tokens) count;
//  - per target token, affinities below the k-th largest over the whole context are zeroed, the rest
//    normalised to sum 1, and the context's soft labels averaged with them;
//  - output: soft labels upsampled bilinearly to the frame, each channel min-max normalised when its max
//    is > 0 (norm_mask), argmax -> object id. Frame 0's output is the given annotation.
// DINO hard-codes the temperature as 0.1 (its code has no temperature argument); it is configurable here.

import { writeFileAtomicSync } from '../util/atomic-write.js';
import { join } from 'node:path';
import { encode } from 'fast-png';
import { z } from 'zod';
import { normalizeRows } from '../linalg/knn.js';
import { evaluateDavisSequence, summarizeDavis, type DavisObjectResult } from '../metrics/davis.js';
import { KvlensInputError } from '../util/errors.js';
import { checkGrid, checkLabelMap, labelsAtTokenCentres, upsampleBilinear, type FeatureGrid, type GridExtent, type LabelMap } from './grid.js';
import type { ProbeResult } from './results.js';
import { ensureDir } from '../util/dirs.js';

export const PropagationConfigSchema = z.object({
  contextFrames: z.number().int().min(0).default(7),
  temperature: z.number().positive().default(0.1),
  topK: z.number().int().positive().default(5),
  /** Neighbourhood radius in tokens; 0 or less = no spatial restriction. */
  radius: z.number().int().default(12),
  voidLabel: z.number().int().default(255),
});
export type PropagationConfig = z.infer<typeof PropagationConfigSchema>;

interface ContextFrame {
  /** L2-normalised tokens [n, dim] */
  readonly feats: Float32Array;
  /** soft labels [n, C] */
  readonly soft: Float32Array;
}

/** Number of objects = the largest id in the first annotation other than the void label. */
export function countObjects(first: LabelMap, voidLabel: number): number {
  let m = 0;
  for (const v of first.data) if (v !== voidLabel && v > m) m = v;
  return m;
}

/** One-hot token labels of the first annotation (nearest at token centres; void -> background). [n, C] */
export function initialSoftLabels(first: LabelMap, rows: number, cols: number, channels: number, voidLabel: number, extent?: GridExtent): Float32Array {
  const lab = labelsAtTokenCentres(first, rows, cols, extent);
  const soft = new Float32Array(rows * cols * channels);
  for (let t = 0; t < lab.length; t++) soft[t * channels + (lab[t] === voidLabel ? 0 : lab[t])] = 1;
  return soft;
}

/** Soft labels of the target from the context frames. [n, C] */
export function propagateSoftLabels(target: Float32Array, rows: number, cols: number, dim: number, context: readonly { feats: Float32Array; soft: Float32Array }[], channels: number, cfg: PropagationConfig): Float32Array {
  const n = rows * cols;
  const out = new Float32Array(n * channels);
  const k = cfg.topK;
  const topVal = new Float64Array(k);
  const topIdx = new Int32Array(k); // context frame * n + token
  const r = cfg.radius > 0 ? cfg.radius : Math.max(rows, cols);
  for (let t = 0; t < n; t++) {
    const tr = Math.floor(t / cols);
    const tc = t % cols;
    let filled = 0;
    const tOff = t * dim;
    // Track every candidate whose affinity ties the k-th value too (DINO keeps all values >= the k-th).
    const ties: number[] = [];
    let kth = -Infinity;
    for (let f = 0; f < context.length; f++) {
      const cf = context[f].feats;
      for (let sr = Math.max(0, tr - r); sr <= Math.min(rows - 1, tr + r); sr++) {
        for (let sc = Math.max(0, tc - r); sc <= Math.min(cols - 1, tc + r); sc++) {
          const s = sr * cols + sc;
          let dot = 0;
          const sOff = s * dim;
          for (let j = 0; j < dim; j++) dot += target[tOff + j] * cf[sOff + j];
          const a = Math.exp(dot / cfg.temperature);
          const id = f * n + s;
          if (filled < k) {
            topVal[filled] = a; topIdx[filled] = id; filled++;
            if (filled === k) kth = minOf(topVal, k);
          } else if (a > kth) {
            const dropped = replaceMin(topVal, topIdx, k, a, id); // its value was kth
            const newKth = minOf(topVal, k);
            if (newKth > kth) ties.length = 0; // every tie had the old, now too small, value
            else ties.push(dropped, kth); // still ties the k-th value: DINO keeps it
            kth = newKth;
          } else if (a === kth) ties.push(id, a);
        }
      }
    }
    let sum = 0;
    for (let i = 0; i < filled; i++) sum += topVal[i];
    for (let i = 0; i < ties.length; i += 2) if (ties[i + 1] === kth) sum += ties[i + 1];
    const add = (id: number, w: number): void => {
      const f = Math.floor(id / n);
      const s = id % n;
      const soft = context[f].soft;
      for (let c = 0; c < channels; c++) out[t * channels + c] += (w / sum) * soft[s * channels + c];
    };
    for (let i = 0; i < filled; i++) add(topIdx[i], topVal[i]);
    for (let i = 0; i < ties.length; i += 2) if (ties[i + 1] === kth) add(ties[i], ties[i + 1]);
  }
  return out;
}

function minOf(v: Float64Array, k: number): number {
  let m = Infinity;
  for (let i = 0; i < k; i++) if (v[i] < m) m = v[i];
  return m;
}

/** Replace the smallest entry with (a, id); returns the replaced id. */
function replaceMin(v: Float64Array, idx: Int32Array, k: number, a: number, id: number): number {
  let mi = 0;
  for (let i = 1; i < k; i++) if (v[i] < v[mi]) mi = i;
  const dropped = idx[mi];
  v[mi] = a; idx[mi] = id;
  return dropped;
}

/** Soft token labels -> label map at frame size (bilinear per channel, norm_mask, argmax). */
export function softLabelsToMap(soft: Float32Array, rows: number, cols: number, channels: number, height: number, width: number, extent?: GridExtent): Uint8Array {
  const n = rows * cols;
  const best = new Float32Array(height * width).fill(-Infinity);
  const out = new Uint8Array(height * width);
  const chan = new Float32Array(n);
  for (let c = 0; c < channels; c++) {
    for (let t = 0; t < n; t++) chan[t] = soft[t * channels + c];
    const up = upsampleBilinear({ rows, cols, data: chan, extent }, height, width);
    let lo = Infinity; let hi = -Infinity;
    for (const v of up) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (hi > 0) {
      const range = hi - lo;
      for (let i = 0; i < up.length; i++) up[i] = range > 0 ? (up[i] - lo) / range : 0;
    }
    for (let i = 0; i < up.length; i++) if (up[i] > best[i]) { best[i] = up[i]; out[i] = c; }
  }
  return out;
}

/**
 * Propagate the first annotation through a video. Yields one label map [height*width] per frame
 * (frame 0: the annotation itself, void kept as in the input). Streams: holds only the context frames.
 */
export async function* propagateVideo(frames: Iterable<FeatureGrid> | AsyncIterable<FeatureGrid>, first: LabelMap, config: Partial<PropagationConfig> = {}): AsyncGenerator<Uint8Array> {
  const cfg = PropagationConfigSchema.parse(config);
  checkLabelMap(first, 'propagation first frame');
  const channels = countObjects(first, cfg.voidLabel) + 1;
  let firstCtx: ContextFrame | null = null;
  const recent: ContextFrame[] = [];
  let index = 0;
  for await (const g of frames) {
    checkGrid(g, `propagation frame ${index}`);
    const feats = normalizeRows(g.data, g.dim);
    if (firstCtx === null) {
      firstCtx = { feats, soft: initialSoftLabels(first, g.rows, g.cols, channels, cfg.voidLabel, g.extent) };
      yield Uint8Array.from(first.data);
    } else {
      if (firstCtx.feats.length !== feats.length) throw new KvlensInputError(`every frame needs the first frame's grid and dim (${firstCtx.feats.length} values), got ${g.rows}x${g.cols}x${g.dim}`, `propagation frame ${index}`);
      const context = [firstCtx, ...recent];
      const soft = propagateSoftLabels(feats, g.rows, g.cols, g.dim, context, channels, cfg);
      if (cfg.contextFrames > 0) {
        if (recent.length === cfg.contextFrames) recent.shift();
        recent.push({ feats, soft });
      }
      yield softLabelsToMap(soft, g.rows, g.cols, channels, first.height, first.width, g.extent);
    }
    index++;
  }
}

/** The VOC / DAVIS colour map (index i -> bit-interleaved RGB). */
export function vocPalette(size = 256): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let i = 0; i < size; i++) {
    let r = 0; let g = 0; let b = 0; let c = i;
    for (let j = 0; j < 8; j++) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    out.push([r, g, b]);
  }
  return out;
}

/** Write a label map as an indexed (palette) PNG, atomically. */
export function writeIndexedPng(path: string, labels: Uint8Array, width: number, height: number, palette: [number, number, number][] = vocPalette()): void {
  const png = encode({ width, height, data: labels, depth: 8, channels: 1, palette });
  writeFileAtomicSync(path, png);
}

export interface VideoSample {
  readonly name: string;
  /** Token features per frame, in order. */
  readonly frames: Iterable<FeatureGrid> | AsyncIterable<FeatureGrid>;
  /** Annotation per frame (object ids, 0 bg, 255 void), same order; frame 0 seeds the propagation. */
  readonly annotations: Iterable<LabelMap> | AsyncIterable<LabelMap>;
  /** Optional frame names for written PNGs (default 00000, 00001, ...). */
  readonly frameNames?: readonly string[];
}

async function* iter<T>(xs: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
  for await (const x of xs) yield x;
}

/** Propagate and evaluate videos; J&F with the DAVIS 2017 toolkit rules. Optionally write indexed PNGs. */
export async function runPropagationProbe(videos: Iterable<VideoSample> | AsyncIterable<VideoSample>, config: Partial<PropagationConfig> & { outputDir?: string; boundTh?: number } = {}): Promise<ProbeResult & { objects: DavisObjectResult[] }> {
  const cfg = PropagationConfigSchema.parse(config);
  const objects: DavisObjectResult[] = [];
  for await (const video of videos) {
    const annotations = iter(video.annotations);
    const firstAnn = await annotations.next();
    if (firstAnn.done) throw new KvlensInputError('video has no annotations', `video ${video.name}`);
    const first = firstAnn.value;
    const gts: Uint8Array[] = [Uint8Array.from(first.data)];
    const preds: Uint8Array[] = [];
    if (config.outputDir) ensureDir(join(config.outputDir, video.name));
    for await (const pred of propagateVideo(video.frames, first, cfg)) {
      if (preds.length > 0) {
        const ann = await annotations.next();
        if (ann.done) throw new KvlensInputError(`more feature frames than annotations (${preds.length + 1})`, `video ${video.name}`);
        if (ann.value.height !== first.height || ann.value.width !== first.width) throw new KvlensInputError('annotation size changes within the video', `video ${video.name} frame ${preds.length}`);
        gts.push(Uint8Array.from(ann.value.data));
      }
      if (config.outputDir) {
        const name = video.frameNames?.[preds.length] ?? String(preds.length).padStart(5, '0');
        writeIndexedPng(join(config.outputDir, video.name, `${name}.png`), pred, first.width, first.height);
      }
      preds.push(pred);
    }
    objects.push(...evaluateDavisSequence(video.name, gts, preds, { height: first.height, width: first.width }, config.boundTh ?? 0.008));
  }
  const s = summarizeDavis(objects);
  return {
    task: 'davis-propagation',
    metrics: [
      { metric: 'J&F', value: s.jfMean, n: s.objects },
      { metric: 'J', value: s.jMean, n: s.objects },
      { metric: 'F', value: s.fMean, n: s.objects },
      { metric: 'J.recall', value: s.jRecall, n: s.objects },
      { metric: 'F.recall', value: s.fRecall, n: s.objects },
      { metric: 'J.decay', value: s.jDecay, n: s.objects },
      { metric: 'F.decay', value: s.fDecay, n: s.objects },
    ],
    protocol: {
      benchmark: 'DAVIS 2017 semi-supervised',
      propagation: `DINO label propagation: context = first frame + ${cfg.contextFrames} most recent frames (soft predictions), affinity exp(cos/${cfg.temperature}), square neighbourhood radius ${cfg.radius} tokens, top-${cfg.topK} over the whole context, normalised`,
      temperatureNote: 'DINO eval_video_segmentation.py hard-codes 0.1',
      firstFrameLabels: 'annotation sampled (nearest) at token centres, one-hot; void -> background',
      output: 'soft labels upsampled bilinearly to frame size, per-channel min-max (norm_mask), argmax',
      metric: 'davis2017-evaluation: first and last frames excluded; J = IoU (both empty = 1); F = boundary F with seg2bmap and disk dilation radius ceil(bound_th * diagonal), bound_th ' + (config.boundTh ?? 0.008) + '; per object nanmean over frames; J&F = mean(J-Mean, F-Mean) over all objects; GT void 255 counted as background (the toolkit zeroes it)',
    },
    objects,
  };
}
