// MSRC, ImageNet-S, BDD10K and DAVIS loaders against their synthetic layouts and hand-made edge cases.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode } from 'fast-png';
import { encodeBmp24 } from '../../../src/data/bmp.js';
import { iterateBdd10k } from '../../../src/data/loaders/bdd10k.js';
import { iterateDavis } from '../../../src/data/loaders/davis.js';
import { iterateImageNetS } from '../../../src/data/loaders/imagenet-s.js';
import { iterateMsrc, MSRC_COLOURS } from '../../../src/data/loaders/msrc.js';
import { encodeGrayPng } from '../../../src/data/png.js';
import { synthBdd10k } from '../../../src/data/synthetic/bdd10k.js';
import { synthDavis, synthImageNetS, synthMsrc } from '../../../src/data/synthetic/segmentation.js';
import { encodeJpeg } from '../../../src/data/synthetic/draw.js';
import { collect, tempDir } from '../tmp.js';

const dir = tempDir('seg');
after(dir.remove);
const sum = (d: ArrayLike<number>) => Array.from(d).reduce((a, b) => a + b, 0);

test('MSRC-v2 layout: foreground = exact GT colour match of the group class', async () => {
  const root = join(dir.path, 'msrc');
  const { truth } = await synthMsrc(root, { seed: 5, n: 6 });
  const samples = await collect(iterateMsrc(root));
  assert.equal(samples.length, 6);
  for (const s of samples) {
    const t = truth.find((x) => x.stem === s.id)!;
    assert.equal(s.group, t.group);
    assert.equal(sum(s.mask.data), t.fgPixels);
  }
  assert.deepEqual((await collect(iterateMsrc(root, { groups: ['car'] }))).map((s) => s.group), ['car', 'car']);
});

test('generic co-seg layout: 0/255 PNG and 0/1 BMP masks both binarise', async () => {
  const root = join(dir.path, 'coseg');
  const g = join(root, 'groups', 'cows');
  mkdirSync(join(g, 'images'), { recursive: true }); mkdirSync(join(g, 'masks'), { recursive: true });
  const rgb = new Uint8Array(4 * 2 * 3).fill(90);
  writeFileSync(join(g, 'images', 'a.jpg'), await encodeJpeg(rgb, 4, 2));
  writeFileSync(join(g, 'images', 'b.bmp'), encodeBmp24({ width: 4, height: 2, data: rgb }));
  writeFileSync(join(g, 'masks', 'a.png'), encode({ width: 4, height: 2, data: Uint8Array.from([0, 255, 255, 0, 0, 0, 128, 100]), depth: 8, channels: 1 }));
  const bmpMask = new Uint8Array(24); bmpMask.set([1, 1, 1], 0); // one pixel of value 1
  writeFileSync(join(g, 'masks', 'b.bmp'), encodeBmp24({ width: 4, height: 2, data: bmpMask }));
  const [a, b] = await collect(iterateMsrc(root));
  assert.deepEqual(Array.from(a.mask.data), [0, 1, 1, 0, 0, 0, 1, 0]); // > 127 when values exceed 1
  assert.deepEqual(Array.from(b.mask.data), [1, 0, 0, 0, 0, 0, 0, 0]); // > 0 for 0/1 masks
  assert.equal(MSRC_COLOURS.cow.join(','), '0,0,128');
});

test('ImageNet-S: class from the folder via the sorted categories file; masks keep 1000', async () => {
  const root = join(dir.path, 'ins');
  const { truth } = await synthImageNetS(root, { seed: 2, n: 5 });
  const samples = await collect(iterateImageNetS(root, { variant: 50 }));
  assert.deepEqual(samples.map((s) => [s.id, s.classId]).sort(), truth.map((t) => [t.id, t.classId]).sort());
  for (const s of samples) {
    const values = new Set(s.mask.data);
    assert.ok(s.mask.data instanceof Uint16Array);
    assert.deepEqual([...values].sort((x, y) => x - y), [0, s.classId, 1000]);
  }
  // Without the categories file the sorted folder list is used: ids become ranks among the present folders.
  renameSync(join(root, 'ImageNetS50', 'ImageNetS_categories_im50.txt'), join(root, 'cats.txt'));
  const ranks = await collect(iterateImageNetS(root, { variant: 50 }));
  assert.deepEqual(ranks.map((s) => s.classId).sort((x, y) => x - y), [1, 2, 3, 4, 5]);
  const viaFile = await collect(iterateImageNetS(root, { variant: 50, categoriesFile: join(root, 'cats.txt') }));
  assert.deepEqual(viaFile.map((s) => s.classId).sort(), truth.map((t) => t.classId).sort());
});

test('BDD10K current and older layouts; 255 kept', async () => {
  const root = join(dir.path, 'bdd');
  await synthBdd10k(root, { seed: 1, n: 4 });
  const cur = await collect(iterateBdd10k(root));
  assert.equal(cur.length, 2, 'the val half');
  for (const s of cur) { assert.equal(s.mask.data[s.mask.data.length - 1], 255); assert.equal(s.mask.data[0], 10); }
  const old = join(dir.path, 'bdd-old', 'bdd100k', 'seg');
  mkdirSync(join(old, 'images', 'val'), { recursive: true }); mkdirSync(join(old, 'labels', 'val'), { recursive: true });
  writeFileSync(join(old, 'images', 'val', 'abc-123.jpg'), await encodeJpeg(new Uint8Array(2 * 2 * 3), 2, 2));
  writeFileSync(join(old, 'labels', 'val', 'abc-123_train_id.png'), encodeGrayPng({ width: 2, height: 2, data: Uint8Array.from([0, 13, 255, 18]) }));
  const [s] = await collect(iterateBdd10k(join(dir.path, 'bdd-old')));
  assert.equal(s.id, 'abc-123');
  assert.deepEqual(Array.from(s.mask.data), [0, 13, 255, 18]);
});

test('DAVIS: sequences with palette-index masks per frame; object count from frame 0', async () => {
  const root = join(dir.path, 'davis');
  const { truth } = await synthDavis(root, { seed: 4, n: 2 });
  const seqs = await collect(iterateDavis(root));
  assert.deepEqual(seqs.map((s) => [s.name, s.numObjects, s.frames.length]), truth.map((t) => [t.name, t.numObjects, 6]));
  for (const [q, s] of seqs.entries()) {
    for (let f = 0; f < s.frames.length; f++) assert.deepEqual(await s.loadMask(f), truth[q].masks[f]);
    // the objects move: frame 0 and frame 5 masks differ
    assert.notDeepEqual(truth[q].masks[0].data, truth[q].masks[5].data);
  }
});
