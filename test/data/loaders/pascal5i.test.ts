import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { iteratePascal5i, pascalBinaryTarget, readFoldFile } from '../../../src/data/loaders/pascal5i.js';
import { decodeLabelPng } from '../../../src/data/png.js';
import { synthPascal5i } from '../../../src/data/synthetic/segmentation.js';
import { collect, tempDir } from '../tmp.js';

const dir = tempDir('pascal');
after(dir.remove);

test('synthetic Pascal-5i loads with masks equal to what was written, 255 boundaries kept', async () => {
  const { truth } = await synthPascal5i(dir.path, { seed: 3, n: 12 });
  for (let fold = 0; fold < 4; fold++) {
    const samples = await collect(iteratePascal5i(dir.path, { fold, split: 'val' }));
    const expected = truth.filter((t) => t.split === 'val').flatMap((t) => t.classes.filter((c) => Math.floor((c - 1) / 5) === fold).map((c) => `${t.id}__${c}`));
    assert.deepEqual(samples.map((s) => `${s.id}__${s.classId + 1}`), expected);
    for (const s of samples) {
      const written = decodeLabelPng(readFileSync(join(dir.path, 'VOC2012', 'SegmentationClassAug', `${s.id}.png`)), 'w');
      assert.deepEqual(s.mask, written);
      assert.ok(s.mask.data.includes(255), 'boundary band is kept as 255');
      assert.ok(s.mask.data.includes(s.classId + 1));
      assert.equal(s.image.kind, 'path');
    }
  }
  // training split = the other three folds' trn lists
  const trn = await collect(iteratePascal5i(dir.path, { fold: 0, split: 'trn' }));
  assert.ok(trn.length > 0 && trn.every((s) => s.classId >= 5));
});

test('a multi-class image appears once per class line; binary target keeps 255 and zeroes other classes', async () => {
  const f = join(dir.path, 'multi.txt');
  writeFileSync(f, '2007_000033__01\n2007_000033__03\r\n\n2007_000061__04');
  const entries = await readFoldFile(f, 0);
  assert.deepEqual(entries.map((e) => [e.id, e.classId, e.lineNo]), [['2007_000033', 0, 1], ['2007_000033', 2, 2], ['2007_000061', 3, 3]]);
  const mask = { width: 4, height: 1, data: Uint8Array.from([0, 1, 3, 255]) };
  assert.deepEqual(Array.from(pascalBinaryTarget(mask, 0)), [0, 1, 0, 255]);
  assert.deepEqual(Array.from(pascalBinaryTarget(mask, 2)), [0, 0, 1, 255]);
  writeFileSync(f, '2007_000033__07\n');
  await assert.rejects(readFoldFile(f, 0), /multi\.txt: line 1: class 7 is not one of fold 0's classes 1\.\.5/);
  writeFileSync(f, '2007_000033-01\n');
  await assert.rejects(readFoldFile(f, 0), /line 1: expected "<voc id>__<class id>"/);
});
