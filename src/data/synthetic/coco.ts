// Synthetic COCO instances (polygons + one crowd RLE), RefCOCO (refer layout with a Python-2 refs pickle), the lmms-lab
// RefCOCO parquet copy, and POPE (JSON Lines over COCO_val2014 images). Objects are named shapes ("circle", "star", ...)
// so yes/no questions have known answers.
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { decodeSegmentation, rleEncode } from '../coco-mask.js';
import { writeFileAtomic } from '../io.js';
import type { LabelGrid } from '../types.js';
import { Canvas, colourFor, flatPolygon, randomShape, SHAPE_KINDS, shapeMask, shapePolygon, type Shape, type ShapeKind } from './draw.js';
import { picklePy2 } from './pickle-writer.js';
import { mulberry32, type Rng } from './prng.js';
import type { SynthOptions } from './segmentation.js';

/** Shape kinds double as COCO-style categories with non-contiguous ids (like COCO's 1..90 with gaps). */
export const SHAPE_CATEGORIES = SHAPE_KINDS.map((name, i) => ({ id: 2 * i + 1, name, supercategory: 'shape' }));
const catId = (k: ShapeKind) => SHAPE_CATEGORIES.find((c) => c.name === k)!.id;

interface SceneObject { shape: Shape; mask: LabelGrid; polygon: number[] }
interface Scene { imageId: number; width: number; height: number; jpeg: Uint8Array; objects: SceneObject[]; kinds: ShapeKind[] }

/** An image with `count` distinct shape kinds, non-overlapping-ish, each with its own colour. */
async function makeScene(rng: Rng, imageId: number, count: number): Promise<Scene> {
  const width = rng.int(112, 144), height = rng.int(96, 128);
  const canvas = new Canvas(width, height, rng, [rng.int(30, 80), rng.int(30, 80), rng.int(30, 80)]);
  const kinds = rng.shuffle([...SHAPE_KINDS]).slice(0, count);
  const objects: SceneObject[] = [];
  for (const [k, kind] of kinds.entries()) {
    // place objects in separate horizontal slots so they never overlap (their masks stay exact)
    const slotW = width / count;
    const r = Math.max(6, Math.min(Math.floor(slotW / 2) - 3, Math.floor(height * 0.2)));
    const shape: Shape = { kind, r, rotation: rng.next() * Math.PI, cx: Math.round(slotW * k + slotW / 2), cy: rng.int(r + 2, height - r - 3) };
    const mask = shapeMask(shape, width, height);
    canvas.paint(mask, colourFor(SHAPE_KINDS.indexOf(kind) + 1), k + 1);
    objects.push({ shape, mask, polygon: flatPolygon(shapePolygon(shape)) });
  }
  return { imageId, width, height, jpeg: await canvas.jpeg(), objects, kinds };
}

function area(mask: LabelGrid): number { let a = 0; for (const v of mask.data) a += v; return a; }
function bbox(poly: number[]): [number, number, number, number] {
  const xs = poly.filter((_, i) => i % 2 === 0), ys = poly.filter((_, i) => i % 2 === 1);
  const x = Math.min(...xs), y = Math.min(...ys);
  return [x, y, Math.max(...xs) - x, Math.max(...ys) - y];
}

function instances(scenes: Scene[], fileName: (id: number) => string, isCrowd: (scene: number, object: number) => boolean) {
  let annId = 1000;
  const annotations: unknown[] = [];
  for (const [si, s] of scenes.entries()) {
    s.objects.forEach((ob, k) => {
      const crowd = isCrowd(si, k);
      annotations.push({
        id: annId++, image_id: s.imageId, category_id: catId(ob.shape.kind), iscrowd: crowd ? 1 : 0, area: area(ob.mask), bbox: bbox(ob.polygon),
        segmentation: crowd ? { counts: rleEncode(ob.mask).counts, size: [s.height, s.width] } : [ob.polygon],
      });
    });
  }
  return {
    info: { description: 'kvlens synthetic shapes' }, licenses: [],
    images: scenes.map((s) => ({ id: s.imageId, file_name: fileName(s.imageId), width: s.width, height: s.height, license: 1 })),
    annotations, categories: SHAPE_CATEGORIES,
  };
}

const id12 = (id: number) => String(id).padStart(12, '0');

/** COCO 2017 layout: annotations/instances_val2017.json + val2017/%012d.jpg; the last object of odd images is a crowd RLE. */
export async function synthCoco(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const scenes: Scene[] = [];
  for (let i = 0; i < (o.n ?? 4); i++) scenes.push(await makeScene(rng, 139 + i * 17, 2 + (i % 2)));
  for (const s of scenes) await writeFileAtomic(join(root, 'val2017', `${id12(s.imageId)}.jpg`), s.jpeg);
  // Odd images carry their last object as crowd RLE (uncompressed counts), so both decoders get exercised.
  const json = instances(scenes, (id) => `${id12(id)}.jpg`, (si, k) => si % 2 === 1 && k === scenes[si].objects.length - 1);
  await writeFileAtomic(join(root, 'annotations', 'instances_val2017.json'), JSON.stringify(json));
  return { truth: scenes.map((s) => ({ imageId: s.imageId, kinds: s.kinds, masks: s.objects.map((ob) => ob.mask) })) };
}

const REF_SPLITS = ['val', 'testA', 'testB', 'train'];

/** refer layout: refcoco/{instances.json, refs(unc).p} + images/mscoco/images/train2014/COCO_train2014_*.jpg. */
export async function synthRefCoco(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const scenes: Scene[] = [];
  for (let i = 0; i < (o.n ?? 4); i++) scenes.push(await makeScene(rng, 581857 + i * 31, 2));
  const fileName = (id: number) => `COCO_train2014_${id12(id)}.jpg`;
  for (const s of scenes) await writeFileAtomic(join(root, 'images', 'mscoco', 'images', 'train2014', fileName(s.imageId)), s.jpeg);
  const inst = instances(scenes, fileName, () => false);
  await writeFileAtomic(join(root, 'refcoco', 'instances.json'), JSON.stringify(inst));
  const refs: unknown[] = [];
  let refId = 0, sentId = 0;
  const anns = inst.annotations as { id: number; image_id: number; category_id: number }[];
  for (const a of anns) {
    const s = scenes.find((x) => x.imageId === a.image_id)!;
    const ob = s.objects[anns.filter((b) => b.image_id === a.image_id).indexOf(a)];
    const side = ob.shape.cx < s.width / 2 ? 'left' : 'right';
    const sents = [`${ob.shape.kind} on the ${side}`, `the ${side} ${ob.shape.kind}`].map((t) => ({
      tokens: t.split(' '), raw: t.toUpperCase()[0] + t.slice(1), sent_id: sentId++, sent: t,
    }));
    refs.push({
      image_id: a.image_id, split: REF_SPLITS[refId % REF_SPLITS.length], sentences: sents, file_name: `COCO_train2014_${id12(a.image_id)}_${a.id}.jpg`,
      category_id: a.category_id, ann_id: a.id, sent_ids: sents.map((x) => x.sent_id), ref_id: refId++,
    });
  }
  await writeFileAtomic(join(root, 'refcoco', 'refs(unc).p'), picklePy2(refs as never));
  return { truth: { refs: refs as { ref_id: number; ann_id: number; split: string }[], scenes } };
}

/** lmms-lab RefCOCO parquet copy: data/val-00000-of-00001.parquet with image structs and one flat polygon per row. */
export async function synthRefCocoParquet(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const rows: { qid: string; jpeg: Uint8Array; poly: number[]; bbox: number[]; kind: string; file: string; mask: LabelGrid }[] = [];
  for (let i = 0; i < (o.n ?? 4); i++) {
    const s = await makeScene(rng, 1000 + i, 2);
    for (const ob of s.objects) {
      // The column is float32, so the known mask is the rasterisation of the float32-rounded polygon.
      const poly32 = ob.polygon.map(Math.fround);
      const mask = decodeSegmentation([poly32], s.height, s.width, 'synthetic parquet polygon');
      rows.push({ qid: `refcoco_val_${rows.length}`, jpeg: s.jpeg, poly: ob.polygon, bbox: bbox(ob.polygon), kind: ob.shape.kind, file: `COCO_train2014_${id12(s.imageId)}.jpg`, mask });
    }
  }
  const buf = parquetWriteBuffer({
    columnData: [
      { name: 'question_id', data: rows.map((r) => r.qid) },
      { name: 'image', data: rows.map((r) => ({ bytes: r.jpeg, path: r.file })) },
      { name: 'question', data: rows.map(() => 'Please carefully observe the area circled in the image and come up with a caption for the area.') },
      { name: 'answer', data: rows.map((r) => [`the ${r.kind}`, `${r.kind}`]) },
      { name: 'segmentation', data: rows.map((r) => r.poly) },
      { name: 'bbox', data: rows.map((r) => r.bbox) },
      { name: 'iscrowd', data: rows.map(() => 0) },
      { name: 'file_name', data: rows.map((r) => r.file) },
    ],
    schema: [
      { name: 'schema', num_children: 8 },
      { name: 'question_id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      ...imageStructSchema('image'),
      { name: 'question', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      ...listSchema('answer', { type: 'BYTE_ARRAY', converted_type: 'UTF8' }),
      ...listSchema('segmentation', { type: 'FLOAT' }),
      ...listSchema('bbox', { type: 'FLOAT' }),
      { name: 'iscrowd', type: 'INT32', converted_type: 'INT_8', repetition_type: 'OPTIONAL' },
      { name: 'file_name', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
    ],
    rowGroupSize: 4,
  });
  await writeFileAtomic(join(root, 'data', 'val-00000-of-00001.parquet'), new Uint8Array(buf));
  return { truth: rows.map((r) => ({ questionId: r.qid, mask: r.mask })) };
}

// Parquet schema fragments matching what the `datasets` library writes.
type Leaf = { type: 'BYTE_ARRAY' | 'FLOAT' | 'INT32'; converted_type?: 'UTF8' };
export function imageStructSchema(name: string) {
  return [
    { name, repetition_type: 'OPTIONAL' as const, num_children: 2 },
    { name: 'bytes', type: 'BYTE_ARRAY' as const, repetition_type: 'OPTIONAL' as const },
    { name: 'path', type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'OPTIONAL' as const },
  ];
}
export function listSchema(name: string, leaf: Leaf) {
  return [
    { name, repetition_type: 'OPTIONAL' as const, converted_type: 'LIST' as const, num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED' as const, num_children: 1 },
    { name: 'element', repetition_type: 'OPTIONAL' as const, ...leaf },
  ];
}

/**
 * POPE: output/coco/coco_pope_{random,popular,adversarial}.json (JSON Lines) over val2014/COCO_val2014_*.jpg.
 * Each image holds 3 shapes -> 3 "yes" questions; the 3 "no" objects differ by split (random / most frequent
 * absent kinds overall / kinds that co-occur most with the present ones), mirroring how POPE builds negatives.
 */
export async function synthPope(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const scenes: Scene[] = [];
  for (let i = 0; i < (o.n ?? 4); i++) scenes.push(await makeScene(rng, 310196 + i * 7, 3));
  const fileName = (id: number) => `COCO_val2014_${id12(id)}.jpg`;
  for (const s of scenes) await writeFileAtomic(join(root, 'val2014', fileName(s.imageId)), s.jpeg);
  const freq = new Map<ShapeKind, number>(SHAPE_KINDS.map((k) => [k, 0]));
  for (const s of scenes) for (const k of s.kinds) freq.set(k, freq.get(k)! + 1);
  const truth: Record<string, { questionId: number; imageId: number; kind: ShapeKind; label: 'yes' | 'no' }[]> = {};
  for (const split of ['random', 'popular', 'adversarial'] as const) {
    const lines: string[] = [];
    truth[split] = [];
    let qid = 1;
    for (const s of scenes) {
      const absent = SHAPE_KINDS.filter((k) => !s.kinds.includes(k));
      const negatives = split === 'random' ? rng.shuffle([...absent]).slice(0, 3)
        : split === 'popular' ? [...absent].sort((a, b) => freq.get(b)! - freq.get(a)! || a.localeCompare(b)).slice(0, 3)
          : [...absent].sort((a, b) => SHAPE_KINDS.indexOf(a) - SHAPE_KINDS.indexOf(b)).reverse().slice(0, 3);
      const qs = [...s.kinds.map((k) => [k, 'yes'] as const), ...negatives.map((k) => [k, 'no'] as const)];
      for (const [kind, label] of qs) {
        lines.push(JSON.stringify({ question_id: qid, image: fileName(s.imageId), text: `Is there a ${kind} in the image?`, label }));
        truth[split].push({ questionId: qid++, imageId: s.imageId, kind, label });
      }
    }
    await writeFileAtomic(join(root, 'output', 'coco', `coco_pope_${split}.json`), lines.join('\n') + '\n');
  }
  return { truth };
}
