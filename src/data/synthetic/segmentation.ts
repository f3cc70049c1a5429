// Synthetic Pascal-5i, MSRC (v2 layout), ImageNet-S, BDD10K and DAVIS in their exact on-disk layouts, from polygon shapes
// with known masks. Small images (96-128 px) so demos stay fast.
import { join } from 'node:path';
import { encodeBmp24 } from '../bmp.js';
import { writeFileAtomic } from '../io.js';
import { MSRC_COLOURS, MSRC_MANIFEST } from '../loaders/msrc.js';
import { encodeGrayPng, encodeImageNetSMask, encodePalettePng } from '../png.js';
import type { LabelGrid } from '../types.js';
import { Canvas, colourFor, randomShape, shapeMask, type Shape } from './draw.js';
import { mulberry32 } from './prng.js';

export interface SynthOptions { seed?: number; n?: number }

const pad = (v: number, n: number) => String(v).padStart(n, '0');

/** Pascal-5i: image i gets class (i%4)*5 + floor(i/4)%5 + 1 (so every fold is used), sometimes a second class. */
export async function synthPascal5i(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const n = o.n ?? 8;
  const lists: Record<'trn' | 'val', string[][]> = { trn: [[], [], [], []], val: [[], [], [], []] };
  const truth: { id: string; classes: number[]; split: 'trn' | 'val' }[] = [];
  for (let i = 0; i < n; i++) {
    const id = `2007_${pad(i + 1, 6)}`;
    const w = rng.int(96, 128), h = rng.int(96, 128);
    const primary = (i % 4) * 5 + (Math.floor(i / 4) % 5) + 1;
    const classes = [primary];
    if (rng.next() < 0.5) { let c = rng.int(1, 20); while (c === primary) c = rng.int(1, 20); classes.push(c); }
    const canvas = new Canvas(w, h, rng, [rng.int(40, 90), rng.int(40, 90), rng.int(40, 90)]);
    for (const c of classes) canvas.paint(shapeMask(randomShape(rng, w, h), w, h), colourFor(c), c);
    canvas.ignoreBoundaries(255);
    const split = Math.floor(i / 4) % 2 === 0 ? 'val' : 'trn';
    const present = new Set(Array.from(canvas.labels.data).filter((v) => v > 0 && v < 255));
    for (const c of [...present].sort((a, b) => a - b)) lists[split][Math.floor((c - 1) / 5)].push(`${id}__${pad(c, 2)}`);
    truth.push({ id, classes: [...present].sort((a, b) => a - b), split });
    await writeFileAtomic(join(root, 'VOC2012', 'JPEGImages', `${id}.jpg`), await canvas.jpeg());
    const png = encodePalettePng(canvas.labels);
    await writeFileAtomic(join(root, 'VOC2012', 'SegmentationClassAug', `${id}.png`), png);
    await writeFileAtomic(join(root, 'VOC2012', 'SegmentationClass', `${id}.png`), png);
  }
  for (const split of ['trn', 'val'] as const) {
    for (let f = 0; f < 4; f++) await writeFileAtomic(join(root, 'splits', 'pascal', split, `fold${f}.txt`), lists[split][f].map((l) => `${l}\n`).join(''));
  }
  return { truth };
}

const MSRC_GROUP_CLASSES = ['cow', 'car', 'bird', 'sheep', 'aeroplane', 'dog'] as const;

/** MSRC-v2 layout: Images/<r>_<k>_s.bmp, GroundTruth/<stem>_GT.bmp colour GT, coseg_groups.json manifest. */
export async function synthMsrc(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const n = o.n ?? 6;
  const groupCount = Math.min(3, Math.max(1, Math.floor(n / 2)));
  const groups: Record<string, { class: string; images: string[] }> = {};
  const truth: { group: string; stem: string; fgPixels: number }[] = [];
  for (let i = 0; i < n; i++) {
    const cls = MSRC_GROUP_CLASSES[i % groupCount];
    const stem = `${(i % groupCount) + 1}_${Math.floor(i / groupCount) + 1}_s`;
    const w = rng.int(96, 128), h = rng.int(96, 120);
    const canvas = new Canvas(w, h, rng, MSRC_COLOURS.grass);
    const gt = new Canvas(w, h, rng, [0, 0, 0]);
    gt.rgb.fill(0);
    gt.band(0, Math.floor(h / 3), MSRC_COLOURS.sky, 1);
    gt.band(Math.floor(h / 3), h, MSRC_COLOURS.grass, 2);
    canvas.band(0, Math.floor(h / 3), [120, 160, 220], 1);
    const obj = shapeMask(randomShape(rng, w, h), w, h);
    canvas.paint(obj, colourFor(i % groupCount + 3), 3);
    gt.paint(obj, MSRC_COLOURS[cls], 3);
    let fg = 0;
    for (let p = 0; p < obj.data.length; p++) if (obj.data[p]) fg++;
    await writeFileAtomic(join(root, 'Images', `${stem}.bmp`), encodeBmp24({ width: w, height: h, data: canvas.rgb }));
    await writeFileAtomic(join(root, 'GroundTruth', `${stem}_GT.bmp`), encodeBmp24({ width: w, height: h, data: gt.rgb }));
    (groups[cls] ??= { class: cls, images: [] }).images.push(stem);
    truth.push({ group: cls, stem, fgPixels: fg });
  }
  await writeFileAtomic(join(root, MSRC_MANIFEST), JSON.stringify({ groups }, null, 2));
  return { truth };
}

/** ImageNetS50/validation{,-segmentation}/<wnid>/ILSVRC2012_val_*.{JPEG,png} + the sorted categories file. */
export async function synthImageNetS(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const n = o.n ?? 6;
  const wnids = Array.from({ length: 50 }, (_, i) => `n${pad(1000000 + i * 7919, 8)}`).sort();
  const base = join(root, 'ImageNetS50');
  await writeFileAtomic(join(base, 'ImageNetS_categories_im50.txt'), wnids.join('\n'));
  const names: string[] = [];
  const truth: { id: string; classId: number }[] = [];
  for (let i = 0; i < n; i++) {
    const classId = ((i * 13) % 50) + 1;
    const wnid = wnids[classId - 1];
    const stem = `ILSVRC2012_val_${pad(i * 97 + 1, 8)}`;
    const w = rng.int(96, 128), h = rng.int(96, 128);
    const canvas = new Canvas(w, h, rng, [rng.int(60, 120), rng.int(60, 120), rng.int(60, 120)], 2);
    canvas.paint(shapeMask(randomShape(rng, w, h), w, h), colourFor(classId), classId);
    canvas.ignoreBoundaries(1000);
    await writeFileAtomic(join(base, 'validation', wnid, `${stem}.JPEG`), await canvas.jpeg());
    await writeFileAtomic(join(base, 'validation-segmentation', wnid, `${stem}.png`), encodeImageNetSMask(canvas.labels));
    names.push(`${wnid}/${stem}.JPEG ${wnid}/${stem}.png`);
    truth.push({ id: `${wnid}/${stem}`, classId });
  }
  await writeFileAtomic(join(base, 'names', 'ImageNetS_im50_validation.txt'), names.join('\n')); // no trailing newline, as shipped
  return { truth };
}


/** DAVIS 2017: short sequences of 1-2 objects moving with constant velocity; palette annotations on every frame. */
export async function synthDavis(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const n = o.n ?? 2; // sequences
  const frames = 6;
  const seqs: string[] = [];
  const truth: { name: string; numObjects: number; masks: LabelGrid[] }[] = [];
  for (let q = 0; q < n; q++) {
    const name = `synth-seq-${q}`;
    const w = 128, h = 96;
    const objects = Array.from({ length: 1 + (q % 2) }, () => ({ shape: randomShape(rng, w, h), vx: rng.int(-3, 3), vy: rng.int(-2, 2) }));
    const masks: LabelGrid[] = [];
    for (let f = 0; f < frames; f++) {
      const canvas = new Canvas(w, h, rng, [50, 60, 70]);
      objects.forEach((ob, k) => {
        const s: Shape = { ...ob.shape, cx: clampTo(ob.shape.cx + ob.vx * f, ob.shape.r + 1, w - ob.shape.r - 2), cy: clampTo(ob.shape.cy + ob.vy * f, ob.shape.r + 1, h - ob.shape.r - 2) };
        canvas.paint(shapeMask(s, w, h), colourFor(k + 7), k + 1);
      });
      const fr = pad(f, 5);
      await writeFileAtomic(join(root, 'JPEGImages', '480p', name, `${fr}.jpg`), await canvas.jpeg());
      await writeFileAtomic(join(root, 'Annotations', '480p', name, `${fr}.png`), encodePalettePng(canvas.labels));
      masks.push(canvas.labels);
    }
    seqs.push(name);
    truth.push({ name, numObjects: objects.length, masks });
  }
  await writeFileAtomic(join(root, 'ImageSets', '2017', 'val.txt'), seqs.map((s) => `${s}\n`).join(''));
  await writeFileAtomic(join(root, 'ImageSets', '2017', 'train.txt'), '');
  return { truth };
}

function clampTo(v: number, lo: number, hi: number): number { return Math.max(lo, Math.min(hi, v)); }
