// BDD10K scene selection by BDD's own frame attributes (Scalabel label files), on the synthetic set written in the real
// layout, and the streaming frame reader on awkward inputs.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterateBdd10k, listSelectedBdd10k } from '../../../src/data/loaders/bdd10k.js';
import { NIGHT_HIGHWAY, readAttributeFiles, streamJsonArray } from '../../../src/data/loaders/bdd10k-attributes.js';
import { iterateDataset } from '../../../src/data/index.js';
import { synthBdd10k } from '../../../src/data/synthetic/bdd10k.js';
import { collect, tempDir } from '../tmp.js';

const dir = tempDir('bdd');
after(dir.remove);

test('night + highway: exactly the images whose frame attributes say so; images without a frame are never selected', async () => {
  const root = join(dir.path, 'synth');
  const { truth } = await synthBdd10k(root, { seed: 3, n: 16 });
  for (const split of ['train', 'val'] as const) {
    const { entries, report } = await listSelectedBdd10k(root, split, NIGHT_HIGHWAY);
    const expected = truth.filter((t) => t.split === split && t.inAttributeFile && t.timeofday === 'night' && t.scene === 'highway').map((t) => t.id);
    assert.ok(expected.length >= 2, 'the synthetic set has night highway scenes');
    assert.deepEqual(entries.map((e) => e.id).sort(), expected.sort());
    assert.deepEqual(report.selected.sort(), expected.sort());
    assert.equal(report.listed, truth.filter((t) => t.split === split).length);
    assert.equal(report.withoutAttributes, truth.filter((t) => t.split === split && !t.inAttributeFile).length);
    for (const e of entries) assert.deepEqual(e.attributes, { timeofday: 'night', scene: 'highway', weather: truth.find((t) => t.id === e.id)!.weather });
  }
  // The generic entry point passes the selection through; samples carry their attributes.
  const samples = await collect(iterateDataset('bdd10k', root, { split: 'val', select: { timeofday: ['daytime'] } }));
  assert.deepEqual(samples.map((s) => s.dataset === 'bdd10k' && s.attributes!.timeofday), samples.map(() => 'daytime'));
  assert.equal(samples.length, truth.filter((t) => t.split === 'val' && t.inAttributeFile && t.timeofday === 'daytime').length);
  // No selection: every image, attributes not read.
  assert.equal((await collect(iterateBdd10k(root, { split: 'val' }))).length, truth.filter((t) => t.split === 'val').length);
});

test('selection errors name the field and what was expected; missing attribute files are named', async () => {
  const root = join(dir.path, 'synth2');
  await synthBdd10k(root, { seed: 1, n: 4 });
  await assert.rejects(listSelectedBdd10k(root, 'val', { timeofday: ['nite'] }), /timeofday: "nite" is not a BDD value; expected one of "daytime", "night"/);
  await assert.rejects(listSelectedBdd10k(root, 'val', { lighting: ['x'] } as never), /unknown BDD attribute "lighting"/);
  await assert.rejects(listSelectedBdd10k(root, 'val', NIGHT_HIGHWAY, [join(root, 'nope.json')]), /nope\.json: cannot read \(ENOENT\)/);
  const bare = join(dir.path, 'bare');
  await synthBdd10k(bare, { seed: 1, n: 2 });
  const { rmSync } = await import('node:fs');
  rmSync(join(bare, 'labels', 'det_20'), { recursive: true });
  await assert.rejects(listSelectedBdd10k(bare, 'val', NIGHT_HIGHWAY), /needs a Scalabel label file with frame attributes: labels\/det_20\/det_\{train,val\}\.json/);
});

test('the frame reader streams across chunk boundaries, with braces and escaped quotes inside strings; first file wins', async () => {
  const frames = Array.from({ length: 3000 }, (_, i) => ({
    name: `img-${i}{"}.jpg`, attributes: { weather: 'clear', scene: i % 2 ? 'highway' : 'tunnel', timeofday: 'night' },
    labels: [{ id: i, category: 'car', attributes: { note: 'a \\"quoted\\" } brace ]' }, box2d: { x1: 0, y1: 0, x2: 1, y2: 1 } }],
    padding: 'x'.repeat(400),
  }));
  const file = join(dir.path, 'big.json');
  writeFileSync(file, JSON.stringify(frames, null, 1)); // > 1 MiB: several read chunks
  let k = 0;
  for await (const f of streamJsonArray(file)) { assert.deepEqual(f, frames[k]); k++; }
  assert.equal(k, frames.length);
  const other = join(dir.path, 'other.json');
  writeFileSync(other, JSON.stringify([{ name: 'img-1{"}.jpg', attributes: { scene: 'tunnel', timeofday: 'daytime' } }, { name: 'only-here.jpg', attributes: { scene: 'undefined' } }]));
  const idx = await readAttributeFiles([file, other]);
  assert.equal(idx.byStem.get('img-1{"}')!.scene, 'highway', 'the first file that names a frame wins');
  assert.deepEqual(idx.byStem.get('only-here'), {}, "BDD's 'undefined' counts as not labelled");
  const cut = join(dir.path, 'cut.json');
  writeFileSync(cut, JSON.stringify(frames.slice(0, 3)).slice(0, -40));
  await assert.rejects(collect(streamJsonArray(cut)), /cut\.json: truncated: the array of frames is not closed/);
  writeFileSync(cut, '{"name": "x"}');
  await assert.rejects(collect(streamJsonArray(cut)), /expected a JSON array of frames/);
});
