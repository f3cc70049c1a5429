// Feature stores with PLANTED features over the synthetic Pascal-5i / SPair sets: layer 2's values encode the ground
// truth (token class one-hot; a pair-consistent position code), layer 0's are noise. A probe flow that reads the wrong
// image, layer or ground truth cannot score layer 2 near 1.
import { resolve } from 'node:path';
import { iterateDataset, type Bdd10kSample, type CosegSample, type Pascal5iSample, type SpairSample } from '../../src/data/index.js';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import type { SpairTruth } from '../../src/data/synthetic/spair.js';
import type { LabelMap } from '../../src/probes/grid.js';
import { StoreWriter, type StoreIdentity } from '../../src/store/index.js';
import { Rng } from '../../src/util/random.js';

export const PLANTED_TAPS = ['lm.0.attn.v', 'lm.1.attn.v', 'lm.2.attn.v'];
const HEADS = 2;

export function plantedIdentity(): StoreIdentity {
  return { model: { path: '/planted/model', configSha256: '0'.repeat(64) }, processor: { planted: true }, prompt: { template: '<image>', prefix: '' }, taps: PLANTED_TAPS, dtype: 'float32', views: ['base'] };
}

/** [1, heads, pos, dim/heads] from per-token vectors [pos, dim] (head-major split of D, as the store flattens it). */
function headMajor(tokens: Float32Array, pos: number, dim: number): { shape: number[]; data: Float32Array } {
  const hd = dim / HEADS;
  const out = new Float32Array(pos * dim);
  for (let p = 0; p < pos; p++) for (let h = 0; h < HEADS; h++) for (let j = 0; j < hd; j++) out[(h * pos + p) * hd + j] = tokens[p * dim + h * hd + j];
  return { shape: [1, HEADS, pos, hd], data: out };
}

export function noise(rng: Rng, n: number, scale: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal() * scale;
  return v;
}

export function writeImage(w: StoreWriter, id: string, source: string, size: { width: number; height: number }, side: number, planted: Float32Array, dim: number, rng: Rng, cleanNoise: number, extent?: { x: number; y: number }): void {
  const pos = side * side;
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  tensors.set('lm.0.attn.v', headMajor(noise(rng, pos * dim, 1), pos, dim));
  const mid = noise(rng, pos * dim, 1);
  for (let i = 0; i < mid.length; i++) mid[i] = 0.15 * planted[i] + mid[i];
  tensors.set('lm.1.attn.v', headMajor(mid, pos, dim));
  const clean = noise(rng, pos * dim, cleanNoise);
  for (let i = 0; i < clean.length; i++) clean[i] += planted[i];
  tensors.set('lm.2.attn.v', headMajor(clean, pos, dim));
  w.add(id, { source, originalSize: size, views: { base: { rows: side, cols: side, positions: Array.from({ length: pos }, (_, k) => k), ...(extent ? { extent } : {}) } } }, tensors);
}

/**
 * Per token: the mix of dense label codes weighted by the fraction of its pixel box holding each VOC label (label 255
 * gets its own code). Dense codes (not one-hot) keep every dimension's spread similar, as in real features.
 */
function labelFeatures(mask: LabelMap, side: number, dim: number, seed: number): Float32Array {
  const codeRng = new Rng(seed * 7919 + 1);
  const codes = Array.from({ length: 22 }, () => noise(codeRng, dim, 1));
  const frac = new Float32Array(side * side * 22);
  for (let y = 0; y < mask.height; y++) {
    const r = Math.min(side - 1, Math.floor((y * side) / mask.height));
    for (let x = 0; x < mask.width; x++) {
      const c = Math.min(side - 1, Math.floor((x * side) / mask.width));
      const v = mask.data[y * mask.width + x];
      frac[(r * side + c) * 22 + (v === 255 ? 21 : v)] += 1;
    }
  }
  const out = new Float32Array(side * side * dim);
  for (let t = 0; t < side * side; t++) {
    let s = 0;
    for (let k = 0; k < 22; k++) s += frac[t * 22 + k];
    for (let k = 0; k < 22; k++) {
      const w = frac[t * 22 + k] / s;
      if (w) for (let j = 0; j < dim; j++) out[t * dim + j] += w * codes[k][j];
    }
  }
  return out;
}

/** Pascal-5i synthetic set + a store whose layer 2 holds the one-hot VOC label at each token centre. */
export async function plantedPascalStore(dataRoot: string, storeRoot: string, n: number, seed = 3): Promise<void> {
  await generateSynthetic('pascal5i', dataRoot, { seed, n });
  const side = 16;
  const dim = 32;
  const rng = new Rng(seed);
  const w = StoreWriter.open(storeRoot, { identity: plantedIdentity(), kvlensVersion: '0.0.0-test' });
  const seen = new Set<string>();
  try {
    for (const fold of [0, 1, 2, 3]) {
      for (const split of ['val', 'trn']) {
        for await (const s of iterateDataset('pascal5i', dataRoot, { fold, split }) as AsyncGenerator<Pascal5iSample>) {
          if (s.image.kind !== 'path' || seen.has(s.id)) continue;
          seen.add(s.id);
          const planted = labelFeatures(s.mask, side, dim, seed);
          writeImage(w, `VOC2012/JPEGImages/${s.id}.jpg`, resolve(s.image.path), { width: s.mask.width, height: s.mask.height }, side, planted, dim, rng, 0.05);
        }
      }
    }
  } finally {
    w.close();
  }
}

/** BDD10K synthetic set (with attribute files) + a store whose layer 2 holds the label-mix code of each token. */
export async function plantedBddStore(dataRoot: string, storeRoot: string, n: number, seed = 3): Promise<void> {
  await generateSynthetic('bdd10k', dataRoot, { seed, n });
  const rows = 9; const dim = 32;
  const rng = new Rng(seed);
  const w = StoreWriter.open(storeRoot, { identity: plantedIdentity(), kvlensVersion: '0.0.0-test' });
  try {
    for (const split of ['train', 'val']) {
      for await (const s of iterateDataset('bdd10k', dataRoot, { split }) as AsyncGenerator<Bdd10kSample>) {
        if (s.image.kind !== 'path') continue;
        const planted = labelFeatures(s.mask, rows, dim, seed);
        writeImage(w, `images/10k/${split}/${s.id}.jpg`, resolve(s.image.path), { width: s.mask.width, height: s.mask.height }, rows, planted, dim, rng, 0.05);
      }
    }
  } finally {
    w.close();
  }
}

/** RBF code of a point over a fixed lattice of anchors (the same lattice for every image). [anchors^2] */
function positionCode(x: number, y: number, out: Float32Array, offset: number): void {
  const a = 10; const span = 160; const sigma = 9;
  for (let i = 0; i < a; i++) for (let j = 0; j < a; j++) {
    const ax = (j + 0.5) * (span / a); const ay = (i + 0.5) * (span / a);
    out[offset + i * a + j] = Math.exp(-((x - ax) ** 2 + (y - ay) ** 2) / (2 * sigma * sigma));
  }
}

/** SPair synthetic set + a store whose layer 2 codes each token by its position in the SOURCE frame (target tokens are
 * mapped back through the generator's known warp), so nearest neighbours are the true correspondences. */
export async function plantedSpairStore(dataRoot: string, storeRoot: string, n: number, seed = 5, extent?: number): Promise<void> {
  const { truth } = (await generateSynthetic('spair', dataRoot, { seed, n })) as { truth: SpairTruth[] };
  const byPair = new Map(truth.map((t) => [t.pairName, t]));
  const side = 24;
  const dim = 100;
  const rng = new Rng(seed);
  const w = StoreWriter.open(storeRoot, { identity: plantedIdentity(), kvlensVersion: '0.0.0-test' });
  try {
    for await (const s of iterateDataset('spair', dataRoot, { split: 'test' }) as AsyncGenerator<SpairSample>) {
      const t = byPair.get(s.pairName)!;
      for (const [sd, toSource] of [[s.src, (x: number, y: number) => [x, y]], [s.trg, (x: number, y: number) => [(x - t.shift[0]) / t.scale, (y - t.shift[1]) / t.scale]]] as const) {
        if (sd.image.kind !== 'path') continue;
        const planted = new Float32Array(side * side * dim);
        for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) {
          // extent e: the tokens read only the first e of each axis (a grid that does not fill its tile), recorded in the store
          const e = extent ?? 1;
          const [x, y] = toSource(((c + 0.5) * e * sd.width) / side, ((r + 0.5) * e * sd.height) / side);
          positionCode(x, y, planted, (r * side + c) * dim);
        }
        writeImage(w, `JPEGImages/${s.category}/${sd.imname}`, resolve(sd.image.path), { width: sd.width, height: sd.height }, side, planted, dim, rng, 0.01, extent ? { x: extent, y: extent } : undefined);
      }
    }
  } finally {
    w.close();
  }
}

/**
 * MSRC synthetic set + a store whose layer 2 gives the group's object one code shared by the group and every image's
 * background its own code: the object is exactly what the images of a group have in common.
 */
export async function plantedMsrcStore(dataRoot: string, storeRoot: string, n: number, seed = 9): Promise<void> {
  await generateSynthetic('msrc', dataRoot, { seed, n });
  const side = 24;
  const dim = 16;
  const rng = new Rng(seed);
  const groupCodes = new Map<string, Float32Array>();
  const w = StoreWriter.open(storeRoot, { identity: plantedIdentity(), kvlensVersion: '0.0.0-test' });
  try {
    for await (const s of iterateDataset('msrc', dataRoot, {}) as AsyncGenerator<CosegSample>) {
      if (s.image.kind !== 'path') continue;
      const fgCode = groupCodes.get(s.group) ?? groupCodes.set(s.group, noise(rng, dim, 1)).get(s.group)!;
      const bgCode = noise(rng, dim, 1);
      const frac = new Float32Array(side * side);
      const cnt = new Float32Array(side * side);
      for (let y = 0; y < s.mask.height; y++) for (let x = 0; x < s.mask.width; x++) {
        const t = Math.min(side - 1, Math.floor((y * side) / s.mask.height)) * side + Math.min(side - 1, Math.floor((x * side) / s.mask.width));
        cnt[t]++;
        if (s.mask.data[y * s.mask.width + x]) frac[t]++;
      }
      const planted = new Float32Array(side * side * dim);
      for (let t = 0; t < side * side; t++) {
        const f = frac[t] / cnt[t];
        for (let j = 0; j < dim; j++) planted[t * dim + j] = f * fgCode[j] + (1 - f) * bgCode[j];
      }
      writeImage(w, `Images/${s.id}.bmp`, resolve(s.image.path), { width: s.mask.width, height: s.mask.height }, side, planted, dim, rng, 0.05);
    }
  } finally {
    w.close();
  }
}
