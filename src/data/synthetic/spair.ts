// Synthetic SPair-71k: each pair shows the same star-like shape in two images; the target is the source under a known
// similarity warp trg = scale * src + shift, so every keypoint (a polygon vertex) has an exact correspondence.
import { join } from 'node:path';
import { writeFileAtomic } from '../io.js';
import { SPAIR_CATEGORIES } from '../loaders/spair.js';
import { VOC_CLASSES } from '../loaders/pascal5i.js';
import { encodePalettePng } from '../png.js';
import type { Point } from '../types.js';
import { Canvas, colourFor, shapeMask, shapePolygon, type Shape } from './draw.js';
import { mulberry32 } from './prng.js';
import type { SynthOptions } from './segmentation.js';

export interface SpairTruth { pairName: string; scale: number; shift: Point; srcKps: Point[]; trgKps: Point[] }

const r2 = (v: number) => Math.round(v * 100) / 100;

export async function synthSpair(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const names: string[] = [];
  const truth: SpairTruth[] = [];
  for (let i = 0; i < (o.n ?? 4); i++) {
    const category = SPAIR_CATEGORIES[i % SPAIR_CATEGORIES.length];
    const vocIndex = VOC_CLASSES.indexOf(category as (typeof VOC_CLASSES)[number]) + 1;
    const srcName = `2008_${String(1000 + 2 * i).padStart(6, '0')}`;
    const trgName = `2008_${String(1001 + 2 * i).padStart(6, '0')}`;
    const sw = rng.int(100, 140), sh = rng.int(90, 120);
    const tw = rng.int(100, 140), th = rng.int(90, 120);
    const src: Shape = { kind: 'star', cx: rng.int(45, sw - 45), cy: rng.int(40, sh - 40), r: rng.int(22, 28), rotation: rng.next() };
    const scale = 0.8 + 0.4 * rng.next();
    const trgCx = rng.int(45, tw - 45), trgCy = rng.int(40, th - 40);
    const shift: Point = [trgCx - scale * src.cx, trgCy - scale * src.cy];
    const trg: Shape = { ...src, cx: trgCx, cy: trgCy, r: src.r * scale };
    const sides = [{ name: srcName, w: sw, h: sh, shape: src }, { name: trgName, w: tw, h: th, shape: trg }];
    const boxes: number[][] = [];
    const kps: Point[][] = [];
    for (const sd of sides) {
      const canvas = new Canvas(sd.w, sd.h, rng, [rng.int(40, 100), rng.int(40, 100), rng.int(40, 100)]);
      const mask = shapeMask(sd.shape, sd.w, sd.h);
      canvas.paint(mask, colourFor(vocIndex), vocIndex);
      const poly = shapePolygon(sd.shape);
      kps.push(poly.map(([x, y]) => [r2(x), r2(y)]));
      const xs = poly.map((p) => p[0]), ys = poly.map((p) => p[1]);
      boxes.push([Math.floor(Math.min(...xs)), Math.floor(Math.min(...ys)), Math.ceil(Math.max(...xs)), Math.ceil(Math.max(...ys))]);
      await writeFileAtomic(join(root, 'JPEGImages', category, `${sd.name}.jpg`), await canvas.jpeg());
      await writeFileAtomic(join(root, 'Segmentation', category, `${sd.name}.png`), encodePalettePng(canvas.labels));
      const kpsDict = Object.fromEntries(poly.map(([x, y], k) => [String(k), [Math.round(x), Math.round(y)]]));
      await writeFileAtomic(join(root, 'ImageAnnotation', category, `${sd.name}.json`), JSON.stringify({
        filename: `${sd.name}.jpg`, src_database: 'synthetic', src_annotation: '', src_image: '', image_width: sd.w, image_height: sd.h,
        image_depth: 3, category, pose: 'Frontal', truncated: 0, occluded: 0, difficult: 0, bndbox: boxes[boxes.length - 1], kps: kpsDict, azimuth_id: 0,
      }));
    }
    const pairName = `${String(i + 1).padStart(6, '0')}-${srcName}-${trgName}:${category}`;
    // Keep every other keypoint (SPair lists only those visible in both), with ids as numeric strings like some copies.
    const keep = kps[0].map((_, k) => k).filter((k) => k % 2 === 0 || k === 1);
    await writeFileAtomic(join(root, 'PairAnnotation', 'test', `${pairName}.json`), JSON.stringify({
      pair_id: i + 1, src_imname: `${srcName}.jpg`, trg_imname: `${trgName}.jpg`, src_imsize: [sw, sh, 3], trg_imsize: [tw, th, 3],
      src_bndbox: boxes[0], trg_bndbox: boxes[1], src_pose: 'Frontal', trg_pose: 'Left',
      src_kps: keep.map((k) => kps[0][k]), trg_kps: keep.map((k) => kps[1][k]), kps_ids: keep.map(String), category,
      viewpoint_variation: 0, scale_variation: scale > 1.1 || scale < 0.9 ? 1 : 0, truncation: 0, occlusion: 0, mirror: 0,
    }));
    names.push(pairName);
    truth.push({ pairName, scale, shift, srcKps: keep.map((k) => kps[0][k]), trgKps: keep.map((k) => kps[1][k]) });
  }
  for (const split of ['trn', 'val']) await writeFileAtomic(join(root, 'Layout', 'large', `${split}.txt`), '');
  await writeFileAtomic(join(root, 'Layout', 'large', 'test.txt'), names.map((n) => `${n}\n`).join(''));
  return { truth };
}
