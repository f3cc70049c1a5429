// runKeyVariance on a synthetic store with planted constant / low-variance key cells: exact variances (vs two-pass),
// planted cells flagged, key_variance.json valid, resume after a crash, refusal of mixed grids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKeyVariance, flaggedFromResult } from '../../../src/experiments/keys/run.js';
import { readJsonValidated } from '../../../src/results/io.js';
import { KeyVarianceSchema } from '../../../src/results/schema.js';
import { StoreWriter, type StoreIdentity } from '../../../src/store/index.js';
import { KvlensInputError } from '../../../src/util/errors.js';
import { Rng } from '../../../src/util/random.js';

const ROWS = 5;
const COLS = 6;
const P = ROWS * COLS;
const HEADS = 2;
const HD = 4;
const D = HEADS * HD;
const LAYERS = 4;
const N = 20;
const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-keyvar-'));

/** keys[layer][image] = [P, D] (float32-rounded, as stored). Layers 2-3: cells 3 and 17 constant; layer 3: cell 8 nearly so. */
function plantedKeys(seed: number): Float32Array[][] {
  const rng = new Rng(seed);
  const constant = Array.from({ length: D }, () => rng.normal() * 5);
  return Array.from({ length: LAYERS }, (_, l) => Array.from({ length: N }, () => {
    const k = new Float32Array(P * D);
    for (let p = 0; p < P; p++) {
      for (let d = 0; d < D; d++) {
        const i = p * D + d;
        if (l >= 2 && (p === 3 || p === 17)) k[i] = constant[d];
        else if (l === 3 && p === 8) k[i] = 2 + 1e-3 * rng.normal();
        else k[i] = 10 + (1 + p / 10) * rng.normal() * (l + 1);
      }
    }
    return k;
  }));
}

function headMajor(k: Float32Array): { shape: number[]; data: Float32Array } {
  const out = new Float32Array(P * D);
  for (let p = 0; p < P; p++) for (let h = 0; h < HEADS; h++) for (let j = 0; j < HD; j++) out[(h * P + p) * HD + j] = k[p * D + h * HD + j];
  return { shape: [1, HEADS, P, HD], data: out };
}

function writeStore(root: string, keys: Float32Array[][], grid: (i: number) => [number, number] = () => [ROWS, COLS]): void {
  const identity: StoreIdentity = {
    model: { path: '/planted/model', configSha256: '0'.repeat(64) }, processor: { planted: true }, prompt: { template: '<image>', prefix: '' },
    taps: Array.from({ length: LAYERS }, (_, l) => `lm.${l}.attn.k`), dtype: 'float32', views: ['base'],
  };
  const w = StoreWriter.open(root, { identity, kvlensVersion: '0.0.0-test' });
  for (let i = 0; i < N; i++) {
    const [rows, cols] = grid(i);
    const tensors = new Map(keys.map((perImage, l) => [`lm.${l}.attn.k`, headMajor(perImage[i])]));
    w.add(`img-${String(i).padStart(2, '0')}`, { source: `planted/${i}`, originalSize: { width: 60, height: 50 }, views: { base: { rows, cols, positions: Array.from({ length: P }, (_, k) => k) } } }, tensors);
  }
  w.close();
}

function twoPass(images: Float32Array[]): number[] {
  const mean = new Float64Array(P * D);
  for (const x of images) for (let i = 0; i < x.length; i++) mean[i] += x[i] / images.length;
  const v = new Array<number>(P).fill(0);
  for (const x of images) for (let i = 0; i < x.length; i++) v[Math.floor(i / D)] += (x[i] - mean[i]) ** 2 / images.length;
  return v;
}

test('store run: variances equal the two-pass values, planted constant cells have variance 0 and are input-agnostic', async () => {
  const keys = plantedKeys(1);
  const store = join(tmp(), 'store');
  writeStore(store, keys);
  const out = tmp();
  const run = await runKeyVariance({ store }, { threshold: 'auto', blockLayers: '2-3', out, randomSeed: 5, perHead: true, imageSource: 'planted' });
  const r = run.result;
  assert.deepEqual([r.nImages, r.grid, r.view, r.tap, r.statistic, r.blockedLayers], [N, { rows: ROWS, cols: COLS }, 'base', 'lm.{L}.attn.k', 'sum', [2, 3]]);
  for (const l of r.layers) {
    const want = twoPass(keys[l.layer]);
    l.variance.forEach((v, p) => assert.ok(Math.abs(v - want[p]) <= 1e-9 * want[p] + 1e-20 /* two-pass rounding on constant cells */, `layer ${l.layer} p ${p}: ${v} vs ${want[p]}`));
    const heads = l.headVariance!;
    assert.equal(heads.length, HEADS);
    l.variance.forEach((v, p) => assert.ok(Math.abs(heads[0][p] + heads[1][p] - v) <= 1e-9 * v + 1e-300));
  }
  assert.equal(r.layers[2].variance[3], 0);
  assert.equal(r.layers[3].variance[17], 0);
  assert.equal(run.threshold.method, 'bimodal-valley');
  assert.deepEqual(r.layers.map((l) => l.inputAgnostic), [[], [], [3, 17], [3, 8, 17]]);
  assert.deepEqual(run.flagged.layers, [{ layer: 2, positions: [3, 17] }, { layer: 3, positions: [3, 8, 17] }]);
  assert.deepEqual(run.random.layers.map((l) => l.positions.length), [2, 3]);
  run.random.layers.forEach((l, i) => assert.ok(l.positions.every((p) => !run.flagged.layers[i].positions.includes(p))));
  assert.equal(run.maps[3].variance[8], r.layers[3].variance[8]);

  const written = await readJsonValidated(join(out, 'results/key_variance.json'), KeyVarianceSchema);
  assert.deepEqual(written, r);
  const back = flaggedFromResult(written);
  assert.deepEqual(back.flagged, run.flagged);
  assert.deepEqual(back.random, run.random);
});

test('a crashed store run resumes from its state file to the same numbers', async () => {
  const keys = plantedKeys(2);
  const store = join(tmp(), 'store');
  writeStore(store, keys);
  const state = join(tmp(), 'state.safetensors');
  const cfg = { threshold: 1 as const, blockLayers: '3', state, checkpointEvery: 3 };
  await assert.rejects(runKeyVariance({ store }, cfg, {
    onProgress: (e) => { if (e.layer === 1 && e.done === 7) throw new Error('killed'); },
  }), /killed/);
  assert.ok(existsSync(state));
  const resumed = await runKeyVariance({ store }, cfg);
  const fresh = await runKeyVariance({ store }, { ...cfg, state: undefined });
  assert.deepEqual(resumed.result.layers.map((l) => l.variance.map((v) => Number(v.toPrecision(12)))), fresh.result.layers.map((l) => l.variance.map((v) => Number(v.toPrecision(12)))));
  assert.equal(resumed.result.threshold.method, 'fixed');
  // another image list cannot reuse the state
  await assert.rejects(runKeyVariance({ store }, { ...cfg, limit: 5 }), /another image list/);
});

test('images with different grids are refused before any key is read', async () => {
  const store = join(tmp(), 'store');
  writeStore(store, plantedKeys(3), (i) => (i === 4 ? [COLS, ROWS] : [ROWS, COLS]));
  await assert.rejects(runKeyVariance({ store }, { blockLayers: '3' }),
    (e: Error) => e instanceof KvlensInputError && /"img-04" has a 6 x 5/.test(e.message) && /--resolution/.test(e.message));
});
