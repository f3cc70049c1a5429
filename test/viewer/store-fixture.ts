// Test helper: a small feature store written by the store's own writer, with structured features so PCA pictures and
// nearest-neighbour matches are meaningful: token (r, c) of image i at layer L is a smooth function of (r, c) whose
// mixing changes with L, plus an image-specific offset. Image 1 is image 0 shifted by one column (known matches).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { encode } from 'fast-png';
import { StoreWriter } from '../../src/store/index.js';
import type { ImageRecord, TapTensor } from '../../src/store/index.js';

export const ROWS = 6;
export const COLS = 6;
export const LAYERS = 4;
export const KV_HEADS = 2;
export const D_HEAD = 8;
const PREFIX = 3;
const SUFFIX = 2;

export const storeTaps = (layers = LAYERS) => Array.from({ length: layers }, (_, l) => [`lm.${l}.attn.k`, `lm.${l}.attn.v`]).flat();

/** Feature j of token (r, c) in image i at layer l. */
export function featureValue(i: number, l: number, r: number, c: number, j: number): number {
  const cc = i === 1 ? c + 1 : c; // image 1 sees the scene shifted one column left
  const phase = 0.7 * j + 0.9 * l;
  return Math.sin(0.8 * r * Math.cos(phase) + 0.6 * cc * Math.sin(phase + l) + j) + 0.05 * i * Math.cos(j);
}

/** A 480x360 photo: a blue-to-green gradient with an orange disc whose place depends on the image (never blank). */
export function fixturePhoto(i: number, width = 480, height = 360): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  const cx = width * (0.35 + 0.1 * i);
  const cy = height * 0.5;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = 3 * (y * width + x);
      const inDisc = (x - cx) ** 2 + (y - cy) ** 2 < (height * 0.25) ** 2;
      data.set(inDisc ? [250, 140, 30] : [40, Math.round(90 + 120 * (y / height)), Math.round(220 - 100 * (x / width))], o);
    }
  }
  return encode({ width, height, data, channels: 3, depth: 8 });
}

/** `photosDir`: also write each image's photo there (PNG) and record it as the image's source. */
export function writeFixtureStore(root: string, images: number, layers = LAYERS, photosDir?: string): string[] {
  const taps = storeTaps(layers);
  const w = StoreWriter.open(root, {
    identity: {
      model: { path: '/models/fixture', configSha256: 'b'.repeat(64) }, processor: { imageSize: 384 },
      prompt: { template: '<image>', prefix: '' }, taps, dtype: 'float32', views: ['base'],
    },
    kvlensVersion: '0.1.0',
  });
  const ids: string[] = [];
  const seqLen = PREFIX + ROWS * COLS + SUFFIX;
  for (let i = 0; i < images; i++) {
    const id = `img/${String(i).padStart(4, '0')}.jpg`;
    const record: ImageRecord = {
      source: photosDir ? join(photosDir, id) : `/data/${id}`, originalSize: photosDir ? { width: 480, height: 360 } : { width: 384, height: 384 },
      views: { base: { rows: ROWS, cols: COLS, positions: Array.from({ length: ROWS * COLS }, (_, k) => PREFIX + k) } },
    };
    const tensors = new Map<string, TapTensor>();
    for (let l = 0; l < layers; l++) {
      for (const kind of ['k', 'v']) {
        const data = new Float32Array(KV_HEADS * seqLen * D_HEAD); // [1, kvHead, pos, dHead]
        for (let h = 0; h < KV_HEADS; h++) {
          for (let k = 0; k < ROWS * COLS; k++) {
            for (let d = 0; d < D_HEAD; d++) {
              const j = h * D_HEAD + d;
              data[(h * seqLen + PREFIX + k) * D_HEAD + d] = featureValue(i, l + (kind === 'k' ? 10 : 0), Math.floor(k / COLS), k % COLS, j);
            }
          }
        }
        tensors.set(`lm.${l}.attn.${kind}`, { shape: [1, KV_HEADS, seqLen, D_HEAD], data });
      }
    }
    if (photosDir) {
      mkdirSync(dirname(join(photosDir, id)), { recursive: true });
      writeFileSync(join(photosDir, id), fixturePhoto(i));
    }
    w.add(id, record, tensors);
    ids.push(id);
  }
  w.close();
  return ids;
}
