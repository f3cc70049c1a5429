// Seeded fuzz of the COCO readers: instances JSON (readCocoInstances + every annotation's mask) and segmentations
// (polygons, uncompressed and compressed RLE) given directly. See harness.ts.
import { test, after } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cocoObject, readCocoInstances } from '../../src/data/loaders/coco.js';
import { decodeSegmentation, rleEncode, rleToString } from '../../src/data/coco-mask.js';
import type { CocoSegmentation } from '../../src/data/types.js';
import { assertClean, fuzz, jsonText, mutateJson, mutateJsonText } from './harness.js';

const tmp = mkdtempSync(join(tmpdir(), 'kvlens-fuzz-coco-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const W = 40, H = 30;
const grid = { width: W, height: H, data: Uint8Array.from({ length: W * H }, (_, i) => ((i % W) > 10 && (i % W) < 25 && i > 200 ? 1 : 0)) };
const rle = rleEncode(grid);
const instances = {
  images: [{ id: 1, file_name: 'a.jpg', width: W, height: H }, { id: 2, file_name: 'b.jpg', width: 2 * W, height: H }],
  categories: [{ id: 1, name: 'circle' }, { id: 3, name: 'star' }],
  annotations: [
    { id: 10, image_id: 1, category_id: 1, segmentation: [[1, 1, 20, 2, 30, 25, 5, 28], [25, 5, 35, 5, 35, 12]], area: 300, bbox: [1, 1, 34, 27], iscrowd: 0 },
    { id: 11, image_id: 1, category_id: 3, segmentation: { counts: rle.counts, size: [H, W] }, area: 100, bbox: [11, 6, 14, 23], iscrowd: 1 },
    { id: 12, image_id: 1, category_id: 3, segmentation: { counts: rleToString(rle), size: [H, W] }, area: 100, bbox: [11, 6, 14, 23], iscrowd: 1 },
    { id: 13, image_id: 2, category_id: 1, segmentation: [[0, 0, 79, 0, 79, 29, 0, 29]], area: 2400, bbox: [0, 0, 80, 30], iscrowd: 0 },
  ],
};

test('fuzz: COCO instances JSON and masks', async () => {
  const path = join(tmp, 'instances.json');
  assertClean(await fuzz({
    name: 'coco-instances', defaultCases: 500,
    make: (rng) => mutateJsonText(rng, instances),
    size: (b) => b.length,
    run: async (b) => {
      writeFileSync(path, b);
      const index = await readCocoInstances(path);
      for (const img of index.images) for (const a of index.annotationsByImage.get(img.id) ?? []) cocoObject(index, a, img);
    },
  }));
});

test('fuzz: COCO segmentations (polygons, RLE lists, RLE strings)', async () => {
  const seeds = instances.annotations.map((a) => a.segmentation);
  assertClean(await fuzz({
    name: 'coco-segmentation', defaultCases: 1500,
    make: (rng) => {
      const seg = mutateJson(rng, rng.pick(seeds));
      if (rng.next() < 0.2 && seg && typeof seg === 'object' && typeof (seg as { counts?: unknown }).counts === 'string') {
        const s = (seg as { counts: string }).counts.split('');
        for (let k = rng.int(1, 5); k > 0; k--) s[rng.int(0, s.length - 1)] = String.fromCharCode(rng.int(40, 120));
        (seg as { counts: string }).counts = s.join('');
      }
      const [h, w] = rng.next() < 0.9 ? [H, W] : [rng.pick([0, 1, 2.5, -3, 1e5, H]), rng.pick([0, 1, 1e5, W, NaN])];
      return { seg, h, w, rule: rng.next() < 0.5 ? 'union' as const : 'exactly-once' as const };
    },
    size: (c) => jsonText(c.seg).length,
    run: (c) => decodeSegmentation(c.seg as CocoSegmentation, c.h, c.w, 'fuzz annotation', c.rule),
  }));
});
