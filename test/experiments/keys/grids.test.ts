// Keys on native-resolution images: the high-res view's variance per high-res grid shape. On the tiny LLaVA-OneVision
// and LLaVA-NeXT with images of three aspect ratios (three anyres grid shapes): each group's variance equals the
// variance recomputed (two-pass) from an extracted store over exactly that group's images; a group under
// minGroupImages is recorded but not used; blockViews 'all' blocks exactly each image's own group's flagged cells
// (token indices from the token map); an image of a shape without a usable group is refused under gridMatch 'exact'
// and carried from the nearest-aspect group under 'nearest' (counted). Qwen2-VL (one native grid) is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { encodePngRgb } from '../../../src/data/synthetic/draw.js';
import { generateSynthetic } from '../../../src/data/synthetic/index.js';
import { blockingConditions, blockingSets } from '../../../src/experiments/blocking.js';
import { mapCells, nearestGroup, runKeyVariance } from '../../../src/experiments/keys/index.js';
import { runExperiment } from '../../../src/experiments/run.js';
import { resolveBlocks } from '../../../src/eval/conditions.js';
import { fullPrompt, lmmsEvalFormat, popeContext } from '../../../src/eval/prompts.js';
import { extractFeatures } from '../../../src/extract/extract.js';
import { listImages } from '../../../src/extract/sources.js';
import { loadVisionModel } from '../../../src/models/index.js';
import { writeLlavaNextCheckpoint, TINY_LLAVA_NEXT } from '../../../src/models/synthetic/llava-next.js';
import { writeLlavaOnevisionCheckpoint, TINY_LLAVA_ONEVISION } from '../../../src/models/synthetic/llava-onevision.js';
import { writeQwen2VlCheckpoint } from '../../../src/models/synthetic/qwen2-vl.js';
import { viewGrid, type TokenMap } from '../../../src/preprocess/token-map.js';
import { loadRunDir } from '../../../src/results/rundir.js';
import type { KeyVariance } from '../../../src/results/schema.js';
import { FeatureStore } from '../../../src/store/reader.js';
import { Rng } from '../../../src/util/random.js';

let root: string;
let images: string;
// three aspect ratios: 4 wide, 3 tall (both >= minGroupImages 3), 1 long (a group under the minimum)
const SIZES: Record<string, [number, number]> = { wide: [112, 56], tall: [56, 112], long: [168, 56] };
const LIST = ['wide', 'tall', 'wide', 'tall', 'long', 'wide', 'tall', 'wide'];
const MIN = 3;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'kvlens-keys-grids-'));
  images = join(root, 'images');
  mkdirSync(images);
  const rng = new Rng(7);
  for (const [i, kind] of LIST.entries()) {
    const [w, h] = SIZES[kind];
    const rgb = new Uint8Array(w * h * 3);
    // smooth random blobs plus noise: keys differ between images, as with real photos
    const [a, b, c] = [rng.int(256), rng.int(256), rng.int(256)];
    for (let p = 0; p < w * h; p++) for (let k = 0; k < 3; k++) rgb[p * 3 + k] = (a * (k + 1) + ((p % w) * b) / w + (Math.floor(p / w) * c) / h + rng.int(60)) & 255;
    writeFileSync(join(images, `${String(i).padStart(2, '0')}-${kind}.png`), await encodePngRgb(rgb, w, h));
  }
  await generateSynthetic('pope', join(root, 'data', 'pope'), { seed: 2, n: 2 });
});
after(() => rmSync(root, { recursive: true, force: true }));

const FAMILIES = [
  { name: 'llava_onevision', write: (d: string) => writeLlavaOnevisionCheckpoint(d), layers: TINY_LLAVA_ONEVISION.text.layers },
  { name: 'llava_next', write: (d: string) => writeLlavaNextCheckpoint(d), layers: TINY_LLAVA_NEXT.text.layers },
];

/** Population variance summed over key dims, two-pass, of `grids` ([rows*cols, dim] row-major each). */
function twoPassVariance(grids: readonly Float32Array[], positions: number): number[] {
  const dim = grids[0].length / positions;
  const out: number[] = [];
  for (let p = 0; p < positions; p++) {
    let s = 0;
    for (let d = 0; d < dim; d++) {
      let m = 0;
      for (const g of grids) m += g[p * dim + d];
      m /= grids.length;
      for (const g of grids) s += (g[p * dim + d] - m) ** 2;
    }
    out.push(s / grids.length);
  }
  return out;
}

/** Independently of the blocking code: image tokens whose (view, row * cols + col) is flagged in that view's set. */
function expectedKeys(map: TokenMap, kv: KeyVariance, layer: number, set: 'flagged' | 'random'): number[] {
  const hr = viewGrid(map, 'highres', 0)!;
  const group = kv.otherViews!.find((o) => o.grid.rows === hr.rows && o.grid.cols === hr.cols && o.group!.used)!;
  const pick = (ls: KeyVariance['layers'], rc: KeyVariance['randomControl']) => (set === 'flagged' ? ls.find((l) => l.layer === layer)!.inputAgnostic : rc!.layers.find((l) => l.layer === layer)!.positions);
  const sets: Record<string, { cols: number; pos: readonly number[] }> = {
    base: { cols: kv.grid.cols, pos: pick(kv.layers, kv.randomControl) },
    highres: { cols: group.grid.cols, pos: pick(group.layers as KeyVariance['layers'], group.randomControl) },
  };
  const out: number[] = [];
  map.entries.forEach((e, pos) => {
    if (e && sets[e.view]?.pos.includes(e.row * sets[e.view].cols + e.col)) out.push(pos);
  });
  return out;
}

function blockedPerLayer(blocks: readonly { layers: readonly number[]; keys: readonly number[] }[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const b of blocks) for (const l of b.layers) out.set(l, [...(out.get(l) ?? []), ...b.keys].sort((x, y) => x - y));
  return out;
}

for (const fam of FAMILIES) {
  test(`${fam.name}: high-res variance per grid shape = two-pass variance from a store over that group's images; blocking uses each image's own group`, { timeout: 240_000 }, async () => {
    const model = fam.write(join(root, fam.name));
    const L = fam.layers;
    const src = { live: { model, images } };
    const cfg = { blockLayers: '-2:', allViews: true, groupHighres: true, minGroupImages: MIN };
    const probe = await runKeyVariance(src, cfg);
    const pooled = probe.result.otherViews!.filter((o) => o.group!.used).flatMap((o) => o.layers.filter((l) => l.layer >= L - 2).flatMap((l) => l.variance)).sort((a, b) => a - b);
    const tau = pooled[Math.floor(pooled.length / 2)]; // flags about half the high-res cells, so blocking has something to check
    const state = join(root, `${fam.name}.state`);
    const run = await runKeyVariance(src, { ...cfg, threshold: tau, state });
    const kv = run.result;
    assert.equal(kv.nImages, LIST.length);
    assert.equal(kv.view, 'base');
    assert.equal(kv.resize, undefined, 'native resolution: no resize recorded');

    // the store: keys of every layer at native resolution, the same (default) prompt
    const storeDir = join(root, `${fam.name}-store`);
    await extractFeatures({ model, images, out: storeDir, taps: ['keys'], views: ['highres'], dtype: 'float32' });
    const store = FeatureStore.open(storeDir);
    try {
      const shapes = new Map<string, string[]>();
      for (const id of store.images()) {
        const g = store.image(id).views.highres!;
        const k = `${g.rows}x${g.cols}`;
        shapes.set(k, [...(shapes.get(k) ?? []), id]);
      }
      assert.equal(shapes.size, 3, `three high-res grid shapes (${[...shapes.keys()].join(', ')})`);
      const groups = kv.otherViews!;
      assert.deepEqual(groups.map((o) => `${o.grid.rows}x${o.grid.cols}`).sort(), [...shapes.keys()].sort(), 'one group per shape');
      assert.deepEqual(groups.map((o) => o.group!.nImages), [4, 3, 1], 'most images first');
      assert.deepEqual(groups.map((o) => o.group!.used), [true, true, false]);
      for (const o of groups) {
        assert.equal(o.view, 'highres');
        const ids = shapes.get(`${o.grid.rows}x${o.grid.cols}`)!;
        assert.equal(o.group!.nImages, ids.length);
        assert.equal(o.group!.minImages, MIN);
        for (const l of o.layers) {
          const want = twoPassVariance(ids.map((id) => store.read(id, `lm.${l.layer}.attn.k`, { view: 'highres' }).data as Float32Array), o.grid.rows * o.grid.cols);
          assert.equal(l.variance.length, want.length);
          l.variance.forEach((v, p) => assert.ok(Math.abs(v - want[p]) <= 1e-6 * Math.max(1, Math.abs(want[p])), `group ${o.grid.rows}x${o.grid.cols} layer ${l.layer} pos ${p}: ${v} vs ${want[p]}`));
          assert.deepEqual(l.inputAgnostic, l.variance.flatMap((v, p) => (v < kv.threshold.value ? [p] : [])), 'flagged against the one τ');
        }
      }
      assert.ok(groups.filter((o) => o.group!.used).some((o) => o.layers.some((l) => l.layer >= L - 2 && l.inputAgnostic.length > 0)));
    } finally {
      store.close();
    }

    // resuming from the state files adds nothing and gives the same result; a missing group file is refused
    const again = await runKeyVariance(src, { ...cfg, threshold: tau, state });
    assert.equal(JSON.stringify(again.result), JSON.stringify(kv));
    const groupFile = readdirSync(root).find((f) => f.startsWith(`${fam.name}.state.highres-grid.`))!;
    rmSync(join(root, groupFile));
    await assert.rejects(runKeyVariance(src, { ...cfg, threshold: tau, state }), /grid-group states cover \d images but the main state has seen 8/);

    // blocking: each native image's high-res tokens from its own group (flagged and control), base as before
    const vlm = await loadVisionModel(model);
    try {
      const text = fullPrompt(lmmsEvalFormat(vlm.family).render(popeContext('Is there a cat in the image?'), 1));
      const items = await listImages(images);
      const sets = blockingSets(kv, L, '-2:', 0, 'all');
      const fallbacks = new Map<string, number>();
      const conds = blockingConditions(['block-input-agnostic', 'block-random'], sets, 'exact', fallbacks);
      let highres = 0;
      for (const kind of ['wide', 'tall']) {
        const item = items.find((it) => it.id.includes(kind))!;
        const { tokenMap: map } = await vlm.prepare({ images: [await item.load()], text });
        for (const [k, set] of [[0, 'flagged'], [1, 'random']] as const) {
          const got = blockedPerLayer(resolveBlocks(conds[k], map, L));
          for (const layer of sets.layers) {
            const want = expectedKeys(map, kv, layer, set);
            assert.deepEqual(got.get(layer) ?? [], want, `${kind} ${set} layer ${layer}`);
            highres += want.filter((p) => map.entries[p]!.view === 'highres').length;
          }
        }
      }
      assert.ok(highres > 0, 'high-res tokens are blocked');
      // the long image's group (1 image) is not used: exact refuses naming the shape; nearest carries the nearest group
      const long = items.find((it) => it.id.includes('long'))!;
      const { tokenMap: lmap } = await vlm.prepare({ images: [await long.load()], text });
      const lg = viewGrid(lmap, 'highres', 0)!;
      assert.throws(() => resolveBlocks(conds[0], lmap, L), new RegExp(`"highres" grid is ${lg.rows}x${lg.cols}, a shape with no usable grid group.*gridMatch "exact"`));
      const [near] = blockingConditions(['block-input-agnostic'], sets, 'nearest', fallbacks);
      const got = blockedPerLayer(resolveBlocks(near, lmap, L));
      const usedSets = sets.views!.flagged.filter((f) => f.view === 'highres');
      const from = nearestGroup(usedSets, lg);
      for (const layer of sets.layers) {
        const hrKeys = (got.get(layer) ?? []).filter((p) => lmap.entries[p]!.view === 'highres');
        const cells = mapCells(from.layers.find((x) => x.layer === layer)!.positions, from.grid, lg, 'nearest');
        assert.deepEqual(hrKeys, cells.map((c) => lg.positions[c]).sort((a, b) => a - b), `long image, layer ${layer}`);
      }
      assert.deepEqual([...fallbacks], [[`highres ${lg.rows}x${lg.cols} <- ${from.grid.rows}x${from.grid.cols}`, 1]]);
    } finally {
      await vlm.dispose();
    }
  });
}

test('blocking run with keys.resolution native: exact refuses a POPE image of an unseen grid shape naming it; nearest runs and counts it', { timeout: 240_000 }, async () => {
  writeLlavaOnevisionCheckpoint(join(root, 'ov'));
  const spec = (gridMatch: string, out: string) => ({
    experiment: 'blocking', model: 'ov', out, blockViews: 'all', gridMatch, maxNewTokens: 2,
    keys: { images: 'images', n: 8, resolution: 'native', minGroupImages: MIN, blockLayers: '-2:' },
    benchmarks: [{ name: 'pope', data: 'data/pope', splits: ['random'], limit: 1 }],
  });
  writeFileSync(join(root, 'exact.yaml'), stringify(spec('exact', 'runs/exact')));
  await assert.rejects(runExperiment(join(root, 'exact.yaml')), /pope random\/\S+ \(image [^)]+\): condition "block-input-agnostic": .*"highres" grid is \d+x\d+, a shape with no usable grid group/);
  writeFileSync(join(root, 'nearest.yaml'), stringify(spec('nearest', 'runs/nearest')));
  const s = await runExperiment(join(root, 'nearest.yaml'));
  const run = await loadRunDir(s.runDir);
  const kv = JSON.parse(readFileSync(join(s.runDir, 'results', 'key_variance.json'), 'utf8')) as KeyVariance;
  assert.deepEqual(kv.otherViews!.map((o) => o.group!.nImages), [4, 3, 1]);
  const notes = run.manifest.notes ?? '';
  assert.match(notes, /Key variance: 8 images at native resolution/);
  assert.match(notes, /high-res per grid shape: each image blocked from its own shape's group \(used: \d+x\d+, \d+x\d+; 1 group\(s\) under minGroupImages not used\)/);
  assert.match(notes, /Grid match: nearest \(1 image prefill\(s\) had a high-res grid shape with no usable grid group and were blocked from the nearest group by aspect ratio: highres \d+x\d+ <- \d+x\d+ ×1\)/);
});

test('Qwen2-VL (one native grid, no base view) is refused for native grouping, with the reason', { timeout: 120_000 }, async () => {
  writeQwen2VlCheckpoint(join(root, 'qwen'));
  writeFileSync(join(root, 'qwen.yaml'), stringify({ experiment: 'keys', model: 'qwen', out: 'runs/qwen', images: 'images', n: 8, resolution: 'native', allViews: true }));
  await assert.rejects(runExperiment(join(root, 'qwen.yaml')), /keys.resolution "native": the analysed view is "highres" \(this model has no base view; Qwen2-VL/);
  await assert.rejects(runKeyVariance({ live: { model: join(root, 'qwen'), images } }, { view: 'highres', allViews: true, groupHighres: true }), /groupHighres.*must be "base".*Qwen2-VL/);
  await assert.rejects(runKeyVariance({ live: { model: join(root, 'qwen'), images, resolution: 64 } }, { allViews: true, groupHighres: true }), /resized to 64 px, so there is one high-res grid/);
  await assert.rejects(runKeyVariance({ live: { model: join(root, 'qwen'), images } }, { groupHighres: true }), /needs allViews/);
});
