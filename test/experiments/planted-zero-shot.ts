// PLANTED stores for the zero-shot tasks (semseg, refseg, propagation), like planted.ts: layer 2's tokens are the
// pixel-fraction mix of codes of what covers them (a class, a referred object, a video object), layer 1 a weak copy,
// layer 0 noise. For the text-query tasks the test's text provider returns, at layer 2, the code the text names (and
// noise at the other layers), so only a flow that pairs the right text, image, layer and mask can score high.
import { resolve } from 'node:path';
import { iterateDataset, type DavisSequence, type ImageNetSSample, type LabelGrid, type RefCocoSample } from '../../src/data/index.js';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { writeFileAtomicSync } from '../../src/util/atomic-write.js';
import type { TextQueryProvider, TextVectors } from '../../src/experiments/text-queries.js';
import { StoreWriter } from '../../src/store/index.js';
import { Rng } from '../../src/util/random.js';
import { noise, plantedIdentity, writeImage } from './planted.js';

const SIDE = 24;
const DIM = 32;

/** Per token: sum over the pixels of its box of codeOf(label), divided by the pixel count. [side*side*dim] */
function codeMix(mask: LabelGrid, codeOf: (label: number) => Float32Array): Float32Array {
  const out = new Float32Array(SIDE * SIDE * DIM);
  const cnt = new Float32Array(SIDE * SIDE);
  for (let y = 0; y < mask.height; y++) for (let x = 0; x < mask.width; x++) {
    const t = Math.min(SIDE - 1, Math.floor((y * SIDE) / mask.height)) * SIDE + Math.min(SIDE - 1, Math.floor((x * SIDE) / mask.width));
    const code = codeOf(mask.data[y * mask.width + x]);
    cnt[t]++;
    for (let j = 0; j < DIM; j++) out[t * DIM + j] += code[j];
  }
  for (let t = 0; t < SIDE * SIDE; t++) for (let j = 0; j < DIM; j++) out[t * DIM + j] /= cnt[t] || 1;
  return out;
}

/** Text provider: layer 2 gets codeOfText(text), every other tap noise (seeded by tap and text). */
function plantedProvider(codeOfText: (text: string) => Float32Array, calls: string[][]): TextQueryProvider {
  return async (texts, taps) => {
    calls.push([...texts]);
    const out: TextVectors = new Map();
    taps.forEach((tap, i) => {
      const m = new Map<string, Float32Array>();
      texts.forEach((t, k) => m.set(t, tap === 'lm.2.attn.v' ? codeOfText(t) : noise(new Rng(1000 * i + k + 1), DIM, 1)));
      out.set(tap, m);
    });
    return out;
  };
}

/**
 * ImageNet-S synthetic set + a names file ("<wnid> thing <classId>") + a store coding each class (and background, and
 * the 1000 ignore border as background) on layer 2. Returns the provider mapping "thing <id>" to class <id>'s code.
 */
export async function plantedImageNetS(dataRoot: string, storeRoot: string, n: number, seed = 11): Promise<{ provider: TextQueryProvider; calls: string[][] }> {
  await generateSynthetic('imagenet-s', dataRoot, { seed, n });
  const codeRng = new Rng(seed);
  const codes = Array.from({ length: 51 }, () => noise(codeRng, DIM, 1));
  const wnidLines: string[] = [];
  const rng = new Rng(seed + 1);
  const w = StoreWriter.open(storeRoot, { identity: plantedIdentity(), kvlensVersion: '0.0.0-test' });
  try {
    for await (const s of iterateDataset('imagenet-s', dataRoot, {}) as AsyncGenerator<ImageNetSSample>) {
      if (s.image.kind !== 'path') continue;
      wnidLines.push(`${s.wnid} thing ${s.classId}, something else`);
      const planted = codeMix(s.mask, (v) => codes[v === 1000 ? 0 : v]);
      writeImage(w, `ImageNetS50/validation/${s.id}.JPEG`, resolve(s.image.path), { width: s.mask.width, height: s.mask.height }, SIDE, planted, DIM, rng, 0.05);
    }
  } finally {
    w.close();
  }
  writeFileAtomicSync(resolve(dataRoot, 'LOC_synset_mapping.txt'), [...new Set(wnidLines)].join('\n') + '\n');
  const calls: string[][] = [];
  return { calls, provider: plantedProvider((t) => codes[Number(/^thing (\d+)$/.exec(t)![1])], calls) };
}

/** "circle on the left" / "the left circle" -> "circle|left": what the synthetic sentences name. */
function refKey(sentence: string): string {
  const words = sentence.split(' ');
  const side = words.find((x) => x === 'left' || x === 'right')!;
  const kind = words.find((x) => x !== side && x !== 'the' && x !== 'on')!;
  return `${kind}|${side}`;
}

/** RefCOCO synthetic set + a store coding each object by (kind, side) on layer 2; the provider maps a sentence to its code. */
export async function plantedRefCoco(dataRoot: string, storeRoot: string, n: number, seed = 13): Promise<{ provider: TextQueryProvider; calls: string[][] }> {
  await generateSynthetic('refcoco', dataRoot, { seed, n });
  const codes = new Map<string, Float32Array>();
  const codeRng = new Rng(seed);
  const codeOf = (key: string) => codes.get(key) ?? codes.set(key, noise(codeRng, DIM, 1)).get(key)!;
  // Every object of every image (all splits): image -> its objects' masks and keys.
  const images = new Map<string, { path: string; objects: { mask: LabelGrid; key: string }[] }>();
  for await (const s of iterateDataset('refcoco', dataRoot, {}) as AsyncGenerator<RefCocoSample>) {
    if (s.image.kind !== 'path') continue;
    const e = images.get(s.image.path) ?? images.set(s.image.path, { path: s.image.path, objects: [] }).get(s.image.path)!;
    e.objects.push({ mask: s.mask, key: refKey(s.sentences[0].sent) });
  }
  const rng = new Rng(seed + 1);
  const bg = codeOf('background');
  const w = StoreWriter.open(storeRoot, { identity: plantedIdentity(), kvlensVersion: '0.0.0-test' });
  try {
    for (const e of images.values()) {
      const first = e.objects[0].mask;
      // Object index per pixel (later objects drawn on top, as the generator paints them in order).
      const owner: LabelGrid = { width: first.width, height: first.height, data: new Uint8Array(first.data.length) };
      e.objects.forEach((o, k) => { for (let i = 0; i < o.mask.data.length; i++) if (o.mask.data[i]) owner.data[i] = k + 1; });
      const planted = codeMix(owner, (v) => (v === 0 ? bg : codeOf(e.objects[v - 1].key)));
      writeImage(w, `images/${e.path.split('/').pop()}`, resolve(e.path), { width: first.width, height: first.height }, SIDE, planted, DIM, rng, 0.05);
    }
  } finally {
    w.close();
  }
  const calls: string[][] = [];
  return { calls, provider: plantedProvider((t) => codeOf(refKey(t)), calls) };
}

/** DAVIS synthetic videos + a store coding each object id (shared by all frames of a video) on layer 2. */
export async function plantedDavis(dataRoot: string, storeRoot: string, n: number, seed = 17): Promise<void> {
  await generateSynthetic('davis', dataRoot, { seed, n });
  const rng = new Rng(seed);
  const w = StoreWriter.open(storeRoot, { identity: plantedIdentity(), kvlensVersion: '0.0.0-test' });
  try {
    for await (const seq of iterateDataset('davis', dataRoot, {}) as AsyncGenerator<DavisSequence>) {
      const codes = Array.from({ length: 256 }, () => noise(rng, DIM, 1));
      for (let f = 0; f < seq.frames.length; f++) {
        const fr = seq.frames[f];
        if (fr.image.kind !== 'path') continue;
        const mask = (await seq.loadMask(f))!;
        writeImage(w, `JPEGImages/480p/${seq.name}/${fr.name}.jpg`, resolve(fr.image.path), { width: mask.width, height: mask.height }, SIDE, codeMix(mask, (v) => codes[v]), DIM, rng, 0.05);
      }
    }
  } finally {
    w.close();
  }
}
