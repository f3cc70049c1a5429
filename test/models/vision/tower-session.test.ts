// The vision tower runs a lean graph (projector.out only) until a run asks for a vision hook: onnxruntime allocates
// every graph output of a run whether fetched or not, so the all-hooks graph cost every untapped prefill each layer's
// output (src/models/vision/tower-session.ts). Checked on a hand-built graph and on every family's tiny checkpoint
// through the one model interface: an untapped forward runs a session whose only output is projector.out, and
// tapping afterwards switches to the full graph with the same numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { f32, type Tensor } from '../../../src/tensor/tensor.js';
import { TowerSession } from '../../../src/models/vision/tower-session.js';
import { defaultTileBatch } from '../../../src/models/vision/tile-runner.js';
import { loadVisionModel } from '../../../src/models/index.js';
import { writeLlavaOnevisionCheckpoint } from '../../../src/models/synthetic/llava-onevision.js';
import { writeLlavaNextCheckpoint } from '../../../src/models/synthetic/llava-next.js';
import { writeQwen2VlCheckpoint, TINY_QWEN2_5_VL, TINY_QWEN2_VL } from '../../../src/models/synthetic/qwen2-vl.js';
import { rgbImage } from '../../../src/preprocess/image.js';

function buildToy(allOutputs: boolean) {
  return { graph: toyGraph(allOutputs), outputs: ['vision.0.out', 'projector.out'] };
}

function toyGraph(allOutputs: boolean) {
  const g = new GraphBuilder('toy_tower');
  const x = g.input('x', 'float32', [2]);
  const hidden = g.add(x, g.scalar(1, 'one'));
  if (allOutputs) g.output(hidden, 'vision.0.out');
  g.output(g.mul(hidden, g.scalar(2, 'two')), 'projector.out');
  return g.build();
}

test('TowerSession: lean graph until a non-lean fetch, then the full graph for good (the lean one is released first)', async () => {
  const tower = await TowerSession.create(buildToy, ['projector.out']);
  try {
    const lean = await tower.sessionFor(['projector.out']);
    assert.deepEqual([...lean.outputNames], ['projector.out']);
    assert.equal(tower.isFull, false);
    assert.deepEqual(tower.outputNames, ['vision.0.out', 'projector.out'], 'every output the tower offers, from the lean build');
    const x = f32([2], Float32Array.from([1, 2]));
    assert.deepEqual(Array.from((await lean.run({ x }))['projector.out'].data as Float32Array), [4, 6]);

    const full = await tower.sessionFor(['vision.0.out', 'projector.out']);
    assert.equal(tower.isFull, true);
    assert.deepEqual([...full.outputNames].sort(), ['projector.out', 'vision.0.out']);
    const out = await full.run({ x });
    assert.deepEqual(Array.from(out['vision.0.out'].data as Float32Array), [2, 3]);
    assert.deepEqual(Array.from(out['projector.out'].data as Float32Array), [4, 6]);
    await assert.rejects(lean.run({ x }), /was disposed/); // never two copies of the tower's weights
    assert.equal(await tower.sessionFor(['projector.out']), full, 'once full, lean fetches use the full graph');
  } finally {
    await tower.dispose();
  }
});

test('defaultTileBatch: one tile per run on the CPU, batches on an accelerator', () => {
  assert.equal(defaultTileBatch(undefined), 1);
  assert.equal(defaultTileBatch('cpu'), 1);
  assert.equal(defaultTileBatch('cuda'), 16);
});

const families = [
  { name: 'llava_onevision', write: (d: string) => writeLlavaOnevisionCheckpoint(d) },
  { name: 'llava_next', write: (d: string) => writeLlavaNextCheckpoint(d) },
  { name: 'qwen2_5_vl', write: (d: string) => writeQwen2VlCheckpoint(d, TINY_QWEN2_5_VL) },
  { name: 'qwen2_vl', write: (d: string) => writeQwen2VlCheckpoint(d, TINY_QWEN2_VL) },
];

function image(w: number, h: number) {
  const img = rgbImage(w, h);
  for (let i = 0; i < img.data.length; i++) img.data[i] = (i * 37 + ((i / 3) | 0) * 11) % 253;
  return img;
}

function maxDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.data as Float32Array, y = b.data as Float32Array;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

for (const fam of families) {
  test(`${fam.name}: an untapped forward runs the lean tower graph; a vision tap switches to the full graph, same numbers`, { timeout: 120_000 }, async () => {
    const dir = fam.write(join(mkdtempSync(join(tmpdir(), 'kvlens-tower-')), 'model'));
    const m = await loadVisionModel(dir);
    try {
      const p = await m.prepare({ images: [image(64, 48)], question: 'What is it?' });
      const lean = await m.forward({ ...m.imageRequest(p), taps: ['image.packed', 'lm.0.attn.k'], logitsAt: 'last' });
      // The tower of every family keeps its TowerSession in `vision.session` (test-only access to a private field).
      const tower = (m as unknown as { vision: { session: TowerSession } }).vision.session;
      assert.equal(tower.isFull, false, 'no vision hook asked: the lean graph ran');
      assert.deepEqual([...(await tower.sessionFor(['projector.out'])).outputNames], ['projector.out']);

      const full = await m.forward({ ...m.imageRequest(p), taps: ['image.packed', 'lm.0.attn.k', 'vision.0.out'], logitsAt: 'last' });
      assert.equal(tower.isFull, true);
      assert.ok(full.taps.get('vision.0.out'), 'the vision tap is produced');
      assert.ok(maxDiff(lean.taps.get('image.packed')!, full.taps.get('image.packed')!) <= 1e-6, 'same projector output from either graph');
      assert.ok(maxDiff(lean.logits!, full.logits!) <= 1e-5);
      assert.ok(maxDiff(lean.taps.get('lm.0.attn.k')!, full.taps.get('lm.0.attn.k')!) <= 1e-5);
    } finally {
      await m.dispose();
    }
  });
}
