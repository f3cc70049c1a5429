// SPair-71k, MME and BLINK loaders against their synthetic layouts and edge cases.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { iterateBlink } from '../../../src/data/loaders/blink.js';
import { iterateMme } from '../../../src/data/loaders/mme.js';
import { iterateSpair, parsePairName } from '../../../src/data/loaders/spair.js';
import { imageStructSchema, listSchema } from '../../../src/data/synthetic/coco.js';
import { synthBlink, synthMme } from '../../../src/data/synthetic/qa.js';
import { synthSpair } from '../../../src/data/synthetic/spair.js';
import { imageSize } from '../../../src/data/io.js';
import { collect, tempDir } from '../tmp.js';

const dir = tempDir('qa');
after(dir.remove);

test('SPair: pair names with ":" parse by the last colon; keypoints follow the known warp; imsize is [W, H]', async () => {
  const root = join(dir.path, 'spair');
  const { truth } = await synthSpair(root, { seed: 11, n: 3 });
  const pairs = await collect(iterateSpair(root, { split: 'test' }));
  assert.deepEqual(pairs.map((p) => p.pairName), truth.map((t) => t.pairName));
  for (const [i, p] of pairs.entries()) {
    const t = truth[i];
    assert.ok(p.pairName.includes(':'));
    assert.equal(p.category, p.pairName.split(':')[1]);
    assert.deepEqual(p.src.kps, t.srcKps);
    for (let k = 0; k < p.src.kps.length; k++) {
      const [x, y] = p.src.kps[k];
      assert.ok(Math.abs(t.scale * x + t.shift[0] - p.trg.kps[k][0]) < 0.02);
      assert.ok(Math.abs(t.scale * y + t.shift[1] - p.trg.kps[k][1]) < 0.02);
    }
    assert.ok(p.kpsIds.every((v) => typeof v === 'number')); // written as numeric strings
    const size = await imageSize(p.trg.image);
    assert.deepEqual([size.width, size.height], [p.trg.width, p.trg.height]);
  }
  assert.deepEqual(parsePairName('000001-2008_000585-2008_004704:aeroplane', 'w'), { index: '000001', src: '2008_000585', trg: '2008_004704', category: 'aeroplane' });
  assert.throws(() => parsePairName('000001-2008_000585-2008_004704', 'list.txt'), /list\.txt: pair name .* is not "<idx>-<src>-<trg>:<category>"/);
});

test('MME: flat and split task layouts, CRLF files, mixed extensions; extra MME_Benchmark/ level', async () => {
  const root = join(dir.path, 'mme', 'MME_Benchmark_release_version');
  const { truth } = await synthMme(root, { seed: 3, n: 6 });
  const qs = await collect(iterateMme(root));
  assert.equal(qs.length, 12);
  for (const t of truth) {
    const mine = qs.filter((q) => q.questionId.startsWith(`${t.task}/${t.stem}.`));
    assert.deepEqual(mine.map((q) => q.answer), ['Yes', 'No']);
    assert.equal(mine[0].question, `Is there a ${t.present} in this image? Please answer yes or no.`);
    assert.equal(mine[0].questionId, mine[1].questionId); // shared by the image's two questions
  }
  assert.ok(qs.some((q) => q.questionId.endsWith('.png')) && qs.some((q) => q.questionId.endsWith('.jpg')));
  assert.ok(qs.some((q) => q.task === 'existence' && q.image.kind === 'path' && !q.image.path.includes('/images/')));
  const nested = join(dir.path, 'mme2');
  mkdirSync(nested);
  renameSync(root, join(nested, 'MME_Benchmark'));
  assert.equal((await collect(iterateMme(nested, { tasks: ['scene'] }))).length, 6);
  assert.equal((await collect(iterateMme(nested, { limit: 3 }))).length, 3);
});

test('BLINK: parquet image structs with nulls; Art_Style has 3 images, answers "(A)"/"(B)"', async () => {
  const root = join(dir.path, 'blink');
  const { truth } = await synthBlink(root, { seed: 8, n: 3 });
  const rows = await collect(iterateBlink(root, { split: 'val' }));
  const art = rows.filter((r) => r.idx.startsWith('val_Art_Style'));
  assert.deepEqual(art.map((r) => [r.idx, r.answer]), truth.art.map((t) => [t.idx, t.answer]));
  for (const r of art) {
    assert.deepEqual(r.images.map((im) => im?.kind ?? null), ['bytes', 'bytes', 'bytes', null]);
    assert.deepEqual(r.choices, ['the second image', 'the third image']);
    assert.match(r.prompt, /^Some most common art painting styles include Realism/);
  }
  const counting = rows.filter((r) => r.subTask === 'Counting');
  assert.deepEqual(counting.map((r) => r.images.map((im) => im === null)), counting.map(() => [false, true, true, true]));
  assert.deepEqual(counting.map((r) => r.answer), truth.counting.map((t) => t.answer));
  assert.equal((await collect(iterateBlink(root, { subtasks: ['Art_Style'] }))).length, 3);
  await assert.rejects(collect(iterateBlink(root, { subtasks: ['Jigsaw'] })), /no val-\*\.parquet for sub-task\(s\) Jigsaw/);
});

test('BLINK: a null image_1 and an out-of-range answer are reported with file and row', async () => {
  const root = join(dir.path, 'blink-bad');
  mkdirSync(join(root, 'Jigsaw'), { recursive: true });
  const utf8 = (name: string) => ({ name, type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'OPTIONAL' as const });
  const buf = parquetWriteBuffer({
    columnData: [
      { name: 'idx', data: ['val_Jigsaw_1', 'val_Jigsaw_2'] }, { name: 'question', data: ['q', 'q'] }, { name: 'sub_task', data: ['Jigsaw', 'Jigsaw'] },
      { name: 'image_1', data: [null, { bytes: Uint8Array.from([1, 2]), path: 'x.jpg' }] },
      { name: 'choices', data: [['a', 'b'], ['a', 'b']] }, { name: 'answer', data: ['(A)', '(C)'] }, { name: 'prompt', data: ['p', 'p'] },
    ],
    schema: [{ name: 'schema', num_children: 7 }, utf8('idx'), utf8('question'), utf8('sub_task'), ...imageStructSchema('image_1'),
      ...listSchema('choices', { type: 'BYTE_ARRAY', converted_type: 'UTF8' }), utf8('answer'), utf8('prompt')],
  });
  writeFileSync(join(root, 'Jigsaw', 'val-00000-of-00001.parquet'), new Uint8Array(buf));
  const problems: string[] = [];
  assert.equal((await collect(iterateBlink(root, { onProblem: (e) => problems.push(e.message) }))).length, 0);
  assert.match(problems[0], /Jigsaw\/val-00000-of-00001\.parquet row 0: image_1 is null/);
  assert.match(problems[1], /row 1: answer \(C\) is beyond the 2 choices/);
});
