// Block specs against the processor's own token map: every blocked key is the flagged grid cell's image token, queries
// are the text after the image; the random control keeps the counts and differs; grid mismatches are handled.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  blockSpecs, blockSpecsForPrompt, blockedCount, flaggedKeyBlocks, mapCells, randomControl, type FlaggedKeys,
} from '../../../src/experiments/keys/blocking.js';
import { blockSpecsFor } from '../../../src/eval/blocks.js';
import { viewGrids } from '../../../src/preprocess/token-map.js';
import { LlavaOnevisionProcessor, type Prepared } from '../../../src/preprocess/processor.js';
import { KvlensInputError } from '../../../src/util/errors.js';
import { tinyModel, writeImages } from '../../extract/helpers.js';

let proc: LlavaOnevisionProcessor;
let wide: Prepared;
let square: Prepared;

before(async () => {
  const model = tinyModel();
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-keys-block-'));
  const sizes = [{ width: 150, height: 60 }, { width: 56, height: 56 }];
  const rels = await writeImages(dir, 2, { size: (i) => sizes[i] });
  proc = await LlavaOnevisionProcessor.fromPretrained(model);
  wide = await proc.prepare({ images: [join(dir, rels[0])], question: 'Is there a red square in the image?' });
  square = await proc.prepare({ images: [join(dir, rels[1])], question: 'What colour?' });
});

test('flagged base cells map to the prompt positions of exactly those image tokens; queries are the text after the image', () => {
  const map = wide.tokenMap;
  const [base] = viewGrids(map, 'base');
  assert.deepEqual([base.rows, base.cols], [4, 4]);
  const flagged: FlaggedKeys = {
    view: 'base', grid: { rows: 4, cols: 4 },
    layers: [{ layer: 5, positions: [0, 5, 15] }, { layer: 6, positions: [0, 5, 15] }, { layer: 7, positions: [2] }, { layer: 4, positions: [] }],
  };
  const specs = blockSpecsForPrompt(flagged, map);
  assert.deepEqual(specs.map((s) => s.layers), [[5, 6], [7]], 'layers with equal sets share one spec; empty layers get none');
  const run = map.runs[0];
  for (const [s, cells] of [[specs[0], [0, 5, 15]], [specs[1], [2]]] as const) {
    const got = s.keys.map((pos) => {
      const e = map.entries[pos]!;
      assert.equal(e.view, 'base', `position ${pos} is a base-view image token`);
      return e.row * 4 + e.col;
    });
    assert.deepEqual(got, cells);
    assert.deepEqual(s.keys, cells.map((c) => run.start + c), 'base tokens come first in raster order');
    assert.deepEqual(s.queries, Array.from({ length: map.length - run.end }, (_, i) => run.end + i));
    assert.ok(s.queries.every((q) => map.entries[q] === null), 'queries are text tokens');
  }
  assert.ok(specs[0].queries!.length > 5, 'the question and the assistant turn follow the image');
  const step = blockSpecsFor(flaggedKeyBlocks(flagged, [base]), [map.length]);
  assert.deepEqual(step.map((s) => [s.layers, s.keys, s.queries]), specs.map((s) => [s.layers, s.keys, [map.length]]));
  // bare ViewTokens do not say where the image ends: the caller must give queries or imageEnd
  assert.throws(() => blockSpecs(flagged, [base], { length: map.length }), /imageEnd/);
  assert.deepEqual(blockSpecs(flagged, [base], { length: map.length, imageEnd: run.end }), specs);
  assert.equal(blockedCount(flagged), 7);
  assert.equal(blockedCount(flagged, [7]), 1);
});

test('high-res cells: exact grids map one to one, a different grid is refused or mapped by nearest cell', () => {
  const [hw] = viewGrids(wide.tokenMap, 'highres');
  const [hs] = viewGrids(square.tokenMap, 'highres');
  assert.notDeepEqual([hw.rows, hw.cols], [hs.rows, hs.cols], 'the two images have different high-res grids');
  const all = Array.from({ length: hw.rows * hw.cols }, (_, p) => p);
  const left = all.filter((p) => p % hw.cols < hw.cols / 2);
  const flagged: FlaggedKeys = { view: 'highres', grid: { rows: hw.rows, cols: hw.cols }, layers: [{ layer: 3, positions: left }] };
  const [own] = blockSpecsForPrompt(flagged, wide.tokenMap);
  assert.deepEqual(own.keys.map((k) => { const e = wide.tokenMap.entries[k]!; return [e.view, e.row * hw.cols + e.col]; }), left.map((p) => ['highres', p]));
  assert.throws(() => blockSpecsForPrompt(flagged, square.tokenMap), (e: Error) => e instanceof KvlensInputError && /--resolution/.test(e.message));
  const [near] = blockSpecsForPrompt(flagged, square.tokenMap, { gridMatch: 'nearest' });
  const cells = near.keys.map((k) => square.tokenMap.entries[k]!);
  assert.ok(cells.every((e) => e.view === 'highres' && e.col < hs.cols / 2 + 0.5), 'only the left half is blocked');
  assert.equal(cells.length, hs.rows * Math.ceil(hs.cols / 2));
  // nearest mapping on hand-computed grids: 2x2 -> 4x4 replicates each cell into a 2x2 block
  assert.deepEqual(mapCells([1], { rows: 2, cols: 2 }, { rows: 4, cols: 4 }, 'nearest'), [2, 3, 6, 7]);
});

test('random control: same count per layer, disjoint from the flagged set, seeded', () => {
  const flagged: FlaggedKeys = {
    view: 'base', grid: { rows: 4, cols: 4 },
    layers: [{ layer: 1, positions: [0, 1, 2] }, { layer: 2, positions: [] }, { layer: 3, positions: Array.from({ length: 12 }, (_, i) => i) }],
  };
  const r = randomControl(flagged, 11);
  assert.deepEqual(r.layers.map((l) => l.positions.length), [3, 0, 12]);
  assert.ok(r.layers[0].positions.every((p) => ![0, 1, 2].includes(p) && p < 16));
  assert.deepEqual([...r.layers[0].positions].sort((a, b) => a - b), r.layers[0].positions, 'ascending');
  // 12 of 16 flagged: the 4 unflagged are all taken, 8 more come from the flagged set
  assert.ok([12, 13, 14, 15].every((p) => r.layers[2].positions.includes(p)));
  assert.equal(new Set(r.layers[2].positions).size, 12);
  assert.deepEqual(randomControl(flagged, 11), r);
  const seeds = [12, 13, 14, 15, 16].map((s) => randomControl(flagged, s).layers[0].positions.join());
  assert.ok(new Set([r.layers[0].positions.join(), ...seeds]).size > 1, 'other seeds draw other sets');
});
