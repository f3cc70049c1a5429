// COCO, RefCOCO (pickle + parquet) and POPE loaders against their synthetic layouts and edge cases.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterateCoco } from '../../../src/data/loaders/coco.js';
import { iteratePope } from '../../../src/data/loaders/pope.js';
import { iterateRefCoco, refSplitMatches } from '../../../src/data/loaders/refcoco.js';
import { iterateRefCocoParquet } from '../../../src/data/loaders/refcoco-parquet.js';
import { synthCoco, synthPope, synthRefCoco, synthRefCocoParquet } from '../../../src/data/synthetic/coco.js';
import { collect, tempDir } from '../tmp.js';

const dir = tempDir('coco');
after(dir.remove);

test('COCO: polygon and crowd-RLE objects decode to the drawn masks; categories are non-contiguous ids', async () => {
  const root = join(dir.path, 'coco');
  const { truth } = await synthCoco(root, { seed: 7, n: 4 });
  const samples = await collect(iterateCoco(root, { split: 'val2017' }));
  assert.deepEqual(samples.map((s) => s.imageId), truth.map((t) => t.imageId));
  let crowd = 0;
  for (const [i, s] of samples.entries()) {
    assert.deepEqual(s.objects.map((o) => o.categoryName), truth[i].kinds);
    assert.ok(s.objects.every((o) => o.categoryId % 2 === 1));
    s.objects.forEach((o, k) => assert.deepEqual(o.mask, truth[i].masks[k]));
    crowd += s.objects.filter((o) => o.iscrowd).length;
  }
  assert.equal(crowd, 2);
});

test('RefCOCO: refs pickle + instances; split filter follows refer (testA matches splits containing A)', async () => {
  const root = join(dir.path, 'refer');
  const { truth } = await synthRefCoco(root, { seed: 9, n: 3 });
  const all = await collect(iterateRefCoco(root, { dataset: 'refcoco' }));
  assert.deepEqual(all.map((s) => s.refId), truth.refs.map((r) => r.ref_id));
  for (const s of all) {
    const scene = truth.scenes.find((sc) => sc.imageId === s.imageId)!;
    assert.ok(s.image.kind === 'path' && s.image.path.endsWith(`train2014/COCO_train2014_${String(s.imageId).padStart(12, '0')}.jpg`));
    assert.ok(scene.objects.some((o) => JSON.stringify(o.mask) === JSON.stringify(s.mask)));
    assert.equal(s.sentences.length, 2);
    assert.match(s.sentences[0].sent, /^(square|circle|triangle|diamond|hexagon|star|cross|pentagon) on the (left|right)$/);
  }
  const testA = await collect(iterateRefCoco(root, { split: 'testA' }));
  assert.ok(testA.length > 0 && testA.every((s) => s.split === 'testA'));
  assert.ok(refSplitMatches('testAB', 'testA') && refSplitMatches('testB', 'test') && !refSplitMatches('val', 'test') && !refSplitMatches('testA', 'val'));
});

test('RefCOCO parquet copy: image bytes, expressions and the flat polygon mask', async () => {
  const root = join(dir.path, 'refpq');
  const { truth } = await synthRefCocoParquet(root, { seed: 1, n: 3 });
  const samples = await collect(iterateRefCocoParquet(root, { split: 'val' }));
  assert.equal(samples.length, truth.length);
  for (const [i, s] of samples.entries()) {
    assert.equal(s.questionId, truth[i].questionId);
    assert.equal(s.image.kind, 'bytes');
    assert.deepEqual(s.mask, truth[i].mask);
    assert.equal(s.answers.length, 2);
  }
  await assert.rejects(collect(iterateRefCocoParquet(root, { split: 'testB' })), /no testB-\*\.parquet/);
});

test('POPE: JSON Lines per split, 3 yes + 3 no per image, images found by 2014 name or by id in 2017 folders', async () => {
  const root = join(dir.path, 'pope');
  const { truth } = await synthPope(root, { seed: 2, n: 3 });
  for (const split of ['random', 'popular', 'adversarial'] as const) {
    const qs = await collect(iteratePope(root, { split }));
    assert.deepEqual(qs.map((q) => [q.questionId, q.answer, q.question]), truth[split].map((t) => [t.questionId, t.label, `Is there a ${t.kind} in the image?`]));
    assert.equal(qs.filter((q) => q.answer === 'yes').length, 9);
  }
  // yes-questions are identical across splits; negatives differ
  const yes = (s: string) => truth[s].filter((t) => t.label === 'yes').map((t) => t.kind).join();
  assert.equal(yes('random'), yes('adversarial'));
  // Move one image to train2017 under its 2017 name: still resolved by id.
  const first = truth.random[0];
  const name14 = `COCO_val2014_${String(first.imageId).padStart(12, '0')}.jpg`;
  mkdirSync(join(root, 'train2017'));
  renameSync(join(root, 'val2014', name14), join(root, 'train2017', `${String(first.imageId).padStart(12, '0')}.jpg`));
  const [q] = await collect(iteratePope(root, { split: 'random', limit: 1 }));
  assert.ok(q.image.kind === 'path' && q.image.path.endsWith(join('train2017', `${String(first.imageId).padStart(12, '0')}.jpg`)));
  assert.equal(q.imageFile, name14);
});

test('POPE: a file that is one JSON array instead of JSON Lines is reported per line', async () => {
  const root = join(dir.path, 'pope-bad');
  mkdirSync(root);
  writeFileSync(join(root, 'coco_pope_random.json'), '[{"question_id": 1,\n "image": "x.jpg"}]\n');
  const problems: string[] = [];
  const got = await collect(iteratePope(root, { onProblem: (e) => problems.push(e.message) }));
  assert.equal(got.length, 0);
  assert.equal(problems.length, 2);
  assert.match(problems[0], /coco_pope_random\.json line 1: not a JSON object \(POPE files are JSON Lines/);
});
