// Synthetic feature grids with planted structure, for tests and benchmarks: they make every probe's
// right answer known in advance (signal > 0) or impossible (signal = 0, chance level).

import { Rng, hashSeed, mulberry32 } from '../util/random.js';
import type { FeatureGrid, LabelMap } from './grid.js';
import type { FewShotItem, FewShotSample, SampleLoader } from './fewshot-seg.js';

export interface SyntheticSegSpec {
  readonly images: number;
  readonly rows: number;
  readonly cols: number;
  readonly dim: number;
  /** Label map size. */
  readonly height: number;
  readonly width: number;
  readonly numClasses: number;
  /** Strength of the planted fg/bg directions relative to unit-variance noise (0 = pure noise). */
  readonly signal: number;
  readonly seed: number;
  /** Snap the object rectangle to token boundaries (then a perfect probe can reach IoU 1 exactly). */
  readonly alignToTokens?: boolean;
}

/** Unit-variance uniform noise bank shared by all images of a seed (fast: images copy slices of it). */
const banks = new Map<number, Float32Array>();
function noiseBank(seed: number, size: number): Float32Array {
  const key = seed * 1e9 + size;
  let b = banks.get(key);
  if (!b) {
    const u = mulberry32(hashSeed('noise', seed));
    b = new Float32Array(size);
    const s = Math.sqrt(3);
    for (let i = 0; i < size; i++) b[i] = (2 * u() - 1) * s;
    banks.set(key, b);
  }
  return b;
}

/** Random unit vector [dim]. */
export function randomUnit(rng: Rng, dim: number): Float32Array {
  const v = new Float32Array(dim);
  let s = 0;
  for (let j = 0; j < dim; j++) { v[j] = rng.normal(); s += v[j] * v[j]; }
  const inv = 1 / Math.sqrt(s);
  for (let j = 0; j < dim; j++) v[j] *= inv;
  return v;
}

export function syntheticClassOf(spec: SyntheticSegSpec, index: number): number {
  return 1 + (index % spec.numClasses);
}

/**
 * Image `index`: a rectangle of class c = 1 + index % numClasses on background, a 1-pixel ring of 255
 * (ignore) around it like VOC; token features = noise + signal * sqrt(dim) * (f * classDir_c +
 * (1 - f) * bgDir_index), f = the token's fg pixel fraction.
 */
export function syntheticSegSample(spec: SyntheticSegSpec, index: number): FewShotSample {
  const { rows, cols, dim, height, width } = spec;
  const rng = new Rng(hashSeed(`img${index}`, spec.seed));
  const cls = syntheticClassOf(spec, index);
  let bw = Math.floor(width * (0.3 + 0.4 * rng.uniform()));
  let bh = Math.floor(height * (0.3 + 0.4 * rng.uniform()));
  let bx = Math.floor((width - bw) * rng.uniform());
  let by = Math.floor((height - bh) * rng.uniform());
  if (spec.alignToTokens) {
    const snapX = (v: number): number => Math.floor((Math.round((v * cols) / width) * width) / cols);
    const snapY = (v: number): number => Math.floor((Math.round((v * rows) / height) * height) / rows);
    const x1 = snapX(bx + bw); const y1 = snapY(by + bh);
    bx = snapX(bx); by = snapY(by);
    bw = Math.max(1, x1 - bx); bh = Math.max(1, y1 - by);
  }
  const labels = new Uint8Array(height * width);
  for (let y = by; y < by + bh; y++) for (let x = bx; x < bx + bw; x++) labels[y * width + x] = cls;
  for (let y = Math.max(0, by - 1); y < Math.min(height, by + bh + 1); y++) {
    for (let x = Math.max(0, bx - 1); x < Math.min(width, bx + bw + 1); x++) {
      const inside = y >= by && y < by + bh && x >= bx && x < bx + bw;
      const inner = y > by && y < by + bh - 1 && x > bx && x < bx + bw - 1;
      if (inside && !inner) labels[y * width + x] = 255;
    }
  }
  const dirRng = new Rng(hashSeed(`class${cls}`, spec.seed));
  const classDir = randomUnit(dirRng, dim);
  const bgDir = randomUnit(rng, dim);
  const n = rows * cols * dim;
  const bank = noiseBank(spec.seed, 1 << 22);
  const start = rng.int(bank.length - n);
  const data = Float32Array.from(bank.subarray(start, start + n));
  const amp = spec.signal * Math.sqrt(dim);
  for (let r = 0; r < rows; r++) {
    const y0 = Math.floor((r * height) / rows); const y1 = Math.floor(((r + 1) * height) / rows);
    const fy = Math.max(0, Math.min(y1, by + bh) - Math.max(y0, by)) / Math.max(1, y1 - y0);
    for (let c = 0; c < cols; c++) {
      const x0 = Math.floor((c * width) / cols); const x1 = Math.floor(((c + 1) * width) / cols);
      const fx = Math.max(0, Math.min(x1, bx + bw) - Math.max(x0, bx)) / Math.max(1, x1 - x0);
      const f = fx * fy;
      if (amp === 0) continue;
      const off = (r * cols + c) * dim;
      for (let j = 0; j < dim; j++) data[off + j] += amp * (f * classDir[j] + (1 - f) * bgDir[j]);
    }
  }
  const features: FeatureGrid = { rows, cols, dim, data };
  const map: LabelMap = { height, width, data: labels };
  return { features, labels: map };
}

export function syntheticSegItems(spec: SyntheticSegSpec): FewShotItem[] {
  return Array.from({ length: spec.images }, (_, i) => ({ imageId: String(i), classId: syntheticClassOf(spec, i) }));
}

/** Loader factory (usable as a worker LoaderDescriptor target). */
export function syntheticSegLoader(spec: SyntheticSegSpec): SampleLoader<FewShotSample> {
  return (id: string) => syntheticSegSample(spec, Number(id));
}
