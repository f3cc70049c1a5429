// Image lists and their stable ids: directory walk (sorted, relative ids), list files, dataset specs, duplicates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listImages, parseDatasetSpec } from '../../src/extract/sources.js';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { KvlensInputError } from '../../src/util/errors.js';
import { writeImages } from './helpers.js';

test('a directory lists image files below it in path order with relative ids; a list file keeps its order', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kvlens-src-'));
  await writeImages(join(root, 'imgs'), 4, { sub: true });
  writeFileSync(join(root, 'imgs', 'notes.txt'), 'not an image');
  mkdirSync(join(root, 'imgs', '.hidden'));
  writeFileSync(join(root, 'imgs', '.hidden', 'x.png'), 'x');
  const items = await listImages(join(root, 'imgs'));
  assert.deepEqual(items.map((i) => i.id), ['img-000.png', 'img-002.png', 'sub/img-001.png', 'sub/img-003.png']);
  assert.equal(items[2].source, join(root, 'imgs', 'sub', 'img-001.png'));
  assert.equal((await items[2].load()).width, 90 + 1); // image 1 of writeImages

  writeFileSync(join(root, 'list.txt'), '# chosen images\nimgs/sub/img-003.png\n\n./imgs/img-000.png\n');
  const listed = await listImages(join(root, 'list.txt'));
  assert.deepEqual(listed.map((i) => [i.id, i.source]), [
    ['imgs/sub/img-003.png', join(root, 'imgs/sub/img-003.png')], ['imgs/img-000.png', join(root, 'imgs/img-000.png')],
  ]);
  writeFileSync(join(root, 'dup.txt'), 'imgs/img-000.png\nimgs/img-000.png\n');
  await assert.rejects(listImages(join(root, 'dup.txt')), (e: unknown) => e instanceof KvlensInputError && /appears twice/.test(e.message));
  await assert.rejects(listImages(join(root, 'nope')), (e: unknown) => e instanceof KvlensInputError && /ENOENT/.test(e.message));
});

test('dataset specs: options parsed, images listed once with ids relative to the root', async () => {
  assert.deepEqual(parseDatasetSpec('dataset:pascal5i:/data/voc?split=val&fold=2'), { name: 'pascal5i', root: '/data/voc', options: { split: 'val', fold: 2 } });
  assert.throws(() => parseDatasetSpec('dataset:nope:/x'), /unknown dataset "nope"/);
  assert.throws(() => parseDatasetSpec('dataset:msrc:/x?colour=red'), /unknown dataset option "colour"/);
  const root = mkdtempSync(join(tmpdir(), 'kvlens-msrc-'));
  await generateSynthetic('msrc', root, { n: 6 });
  const items = await listImages(`dataset:msrc:${root}`);
  assert.equal(items.length, 6);
  assert.equal(new Set(items.map((i) => i.id)).size, 6);
  for (const it of items) {
    assert.ok(!it.id.startsWith('/') && !it.id.startsWith('..'), it.id);
    assert.equal(it.source, join(root, it.id));
  }
  assert.ok((await items[0].load()).width >= 96);
});
