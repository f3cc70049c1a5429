import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { propagateSoftLabels, propagateVideo, runPropagationProbe, vocPalette, writeIndexedPng, type VideoSample } from '../../src/probes/propagation.js';
import { upsampleNearest, type FeatureGrid, type LabelMap } from '../../src/probes/grid.js';
import { Rng } from '../../src/util/random.js';

const R = 10; const C = 10; const DIM = 32; const PX = 4; const FRAMES = 6;

/** A 3x3-token textured object moving one token right per frame over a static textured background. */
function translatingVideo(seed: number, pureNoise = false): VideoSample {
  const rng = new Rng(seed);
  const bg = new Float32Array(R * C * DIM).map(() => rng.normal());
  const obj = new Float32Array(9 * DIM).map(() => rng.normal());
  const frames: FeatureGrid[] = [];
  const annotations: LabelMap[] = [];
  for (let f = 0; f < FRAMES; f++) {
    const r0 = 3; const c0 = 1 + f;
    const data = new Float32Array(R * C * DIM);
    const tok = new Uint8Array(R * C);
    for (let r = 0; r < R; r++) {
      for (let c = 0; c < C; c++) {
        const inObj = r >= r0 && r < r0 + 3 && c >= c0 && c < c0 + 3;
        tok[r * C + c] = inObj ? 1 : 0;
        const src = inObj ? obj.subarray(((r - r0) * 3 + (c - c0)) * DIM) : bg.subarray((r * C + c) * DIM);
        for (let j = 0; j < DIM; j++) data[(r * C + c) * DIM + j] = pureNoise ? rng.normal() : src[j] + 0.2 * rng.normal();
      }
    }
    frames.push({ rows: R, cols: C, dim: DIM, data });
    annotations.push({ height: R * PX, width: C * PX, data: upsampleNearest(tok, R, C, R * PX, C * PX) });
  }
  return { name: `move${seed}`, frames, annotations };
}

const value = (r: { metrics: { metric: string; value: number }[] }, m: string): number => r.metrics.find((x) => x.metric === m)!.value;

test('top-k affinity propagation by hand: exact matches, top-k weights, neighbourhood radius', () => {
  const cfg = { contextFrames: 7, temperature: 0.1, topK: 1, radius: 0, voidLabel: 255 };
  // 1x2 grids. Context tokens [1,0] (label A) and [0,1] (label B); targets [0,1] and [1,0].
  const ctx = [{ feats: Float32Array.from([1, 0, 0, 1]), soft: Float32Array.from([1, 0, 0, 1]) }];
  assert.deepEqual(Array.from(propagateSoftLabels(Float32Array.from([0, 1, 1, 0]), 1, 2, 2, ctx, 2, cfg)), [0, 1, 1, 0]);
  // top-2: weights exp(cos/0.1) = e^0 and e^10, normalised
  const soft = propagateSoftLabels(Float32Array.from([0, 1, 1, 0]), 1, 2, 2, ctx, 2, { ...cfg, topK: 2 });
  const w = Math.exp(10) / (1 + Math.exp(10));
  assert.ok(Math.abs(soft[1] - w) < 1e-6 && Math.abs(soft[0] - (1 - w)) < 1e-6);
  // 1x3 grids: the exact match of target token 0 sits two tokens away; radius 1 excludes it.
  const ctx3 = [{ feats: Float32Array.from([1, 0, 1, 0, 0, 1]), soft: Float32Array.from([1, 0, 1, 0, 0, 1]) }];
  const t3 = Float32Array.from([0, 1, 0, 1, 0, 1]);
  assert.deepEqual(Array.from(propagateSoftLabels(t3, 1, 3, 2, ctx3, 2, cfg).subarray(0, 2)), [0, 1]);
  assert.deepEqual(Array.from(propagateSoftLabels(t3, 1, 3, 2, ctx3, 2, { ...cfg, radius: 1 }).subarray(0, 2)), [1, 0]);
});

test('a translating object is tracked (J&F near 1); pure noise features are not', async () => {
  const good = await runPropagationProbe([translatingVideo(1), translatingVideo(2)], { radius: 3 });
  assert.ok(value(good, 'J') > 0.9, `J ${value(good, 'J')}`);
  assert.ok(value(good, 'J&F') > 0.9, `J&F ${value(good, 'J&F')}`);
  assert.equal(good.objects.length, 2);
  assert.equal(good.objects[0].j.length, FRAMES - 2);
  const noise = await runPropagationProbe([translatingVideo(1, true), translatingVideo(2, true)], { radius: 3 });
  assert.ok(value(noise, 'J') < 0.5, `noise J ${value(noise, 'J')}`);
});

test('frame 0 is the given annotation; predicted label maps are written as indexed PNGs', async () => {
  const video = translatingVideo(3);
  const out: Uint8Array[] = [];
  for await (const m of propagateVideo(video.frames, (video.annotations as LabelMap[])[0])) out.push(m);
  assert.equal(out.length, FRAMES);
  assert.deepEqual(out[0], (video.annotations as LabelMap[])[0].data);
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-prop-'));
  try {
    await runPropagationProbe([video], { outputDir: dir });
    const files = readdirSync(join(dir, video.name)).sort();
    assert.deepEqual(files, ['00000.png', '00001.png', '00002.png', '00003.png', '00004.png', '00005.png']);
    const png = decode(readFileSync(join(dir, video.name, '00000.png')));
    assert.equal(png.channels, 1);
    assert.deepEqual(png.palette?.[1], [128, 0, 0]);
    assert.deepEqual(Array.from(png.data), Array.from((video.annotations as LabelMap[])[0].data));
    writeIndexedPng(join(dir, 'x.png'), Uint8Array.from([0, 2]), 2, 1);
    assert.deepEqual(decode(readFileSync(join(dir, 'x.png'))).palette?.[2], vocPalette()[2]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
