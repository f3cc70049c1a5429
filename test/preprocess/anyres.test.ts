import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  anyresLayout, anyresTokenCount, selectBestResolution, fitInside, paddingForPatching, unpadWindow,
  anyresMaxDownsample, pyFloorDiv, divideCanvas, parseAnyresMax, type Pinpoint,
} from '../../src/preprocess/anyres.js';

// The fixture model: 56-px tiles, 14-px patches, pinpoints 56 * {1..4} x 56 * {1..4}, anyres_max_9.
const TINY: Pinpoint[] = [];
for (let i = 1; i <= 4; i++) for (let j = 1; j <= 4; j++) TINY.push([56 * i, 56 * j]);
const tiny = { pinpoints: TINY, tileSize: 56, patchSize: 14, maxTiles: 9 };

// Real LLaVA-OneVision: 384-px tiles, 14-px patches (27x27 = 729 tokens), pinpoints 384 * {1..6}^2.
const OV: Pinpoint[] = [];
for (let i = 1; i <= 6; i++) for (let j = 1; j <= 6; j++) OV.push([384 * i, 384 * j]);
const ov = { pinpoints: OV, tileSize: 384, patchSize: 14, maxTiles: 9 };

test('fixture image A (150x200): 3x4 tiles, no unpad, anyres_max_9 downsample to 10x13, 156 tokens', () => {
  const l = anyresLayout({ height: 150, width: 200 }, tiny);
  assert.deepEqual(l.bestResolution, { height: 168, width: 224 });
  assert.deepEqual(l.resized, { height: 168, width: 224 });
  assert.deepEqual(l.tileGrid, { height: 3, width: 4 });
  assert.equal(l.tiles.length, 12);
  assert.deepEqual(l.fullGrid, { height: 12, width: 16 });
  assert.deepEqual(l.unpad, { top: 0, left: 0, rows: 12, cols: 16 });
  assert.ok(l.downsample.downsampled);
  assert.ok(Math.abs(l.downsample.ratio - Math.sqrt(192 / 144)) < 1e-15);
  assert.deepEqual(l.finalGrid, { height: 10, width: 13 });
  assert.deepEqual(anyresTokenCount(l), { base: 16, grid: 130, newlines: 10, total: 156 });
});

test('fixture image B (60x200): 2x4 tiles, unpad 2 rows top and bottom, 84 tokens', () => {
  const l = anyresLayout({ height: 60, width: 200 }, tiny);
  assert.deepEqual(l.bestResolution, { height: 112, width: 224 });
  assert.deepEqual(l.resized, { height: 68, width: 224 }); // ceil(60 * 224/200) = ceil(67.2)
  assert.deepEqual(l.padding.canvas, { height: 112, width: 224 }); // (112-68)/2 = 22 each side
  assert.deepEqual(l.unpad, { top: 2, left: 0, rows: 4, cols: 16 });
  assert.equal(l.downsample.downsampled, false);
  assert.equal(anyresTokenCount(l).total, 16 + 64 + 4);
});

test('fixture image C (50x70): odd padding leaves a 56x111 canvas and a 55-px last tile; 44 tokens', () => {
  const l = anyresLayout({ height: 50, width: 70 }, tiny);
  assert.deepEqual(l.bestResolution, { height: 56, width: 112 });
  assert.deepEqual(l.resized, { height: 56, width: 79 });
  assert.deepEqual(l.padding, { top: 0, bottom: 0, left: 16, right: 16, canvas: { height: 56, width: 111 } });
  assert.deepEqual(l.tiles.map((t) => [t.x0, t.x1]), [[0, 56], [56, 111]]);
  assert.deepEqual(l.unpad, { top: 0, left: 1, rows: 4, cols: 6 });
  assert.deepEqual(anyresTokenCount(l), { base: 16, grid: 24, newlines: 4, total: 44 });
});

test('select_best_resolution: hand-derived cases incl. tie on effective resolution broken by waste', () => {
  // 100x100 into [56,56],[56,112],...: square pinpoints fit 56*56=3136 up to 224*224 capped at 10000 effective.
  // 112x112 fits 112x112 = 12544 > 10000 -> effective 10000, waste 12544-10000; larger squares waste more.
  assert.deepEqual(selectBestResolution({ height: 100, width: 100 }, TINY), { height: 112, width: 112 });
  // smaller than one tile: 20x30 -> effective is capped at 600 on every pinpoint; least waste is 56x56.
  assert.deepEqual(selectBestResolution({ height: 20, width: 30 }, TINY), { height: 56, width: 56 });
  // very wide 10x1000 -> widest row [56,224]: scale min(224/1000, 56/10) = .224 -> 224x2 = 448 effective
  assert.deepEqual(selectBestResolution({ height: 10, width: 1000 }, TINY), { height: 56, width: 224 });
  // very tall 1000x10 -> [224,56]
  assert.deepEqual(selectBestResolution({ height: 1000, width: 10 }, TINY), { height: 224, width: 56 });
  // pinpoints are [height, width]: a landscape 384x768 image picks [384, 768] among the OV list (exact fit).
  assert.deepEqual(selectBestResolution({ height: 384, width: 768 }, OV), { height: 384, width: 768 });
  // a custom non-square list
  assert.deepEqual(selectBestResolution({ height: 300, width: 500 }, [[336, 672], [672, 336], [672, 672]]), { height: 336, width: 672 });
});

test('fitInside / padding / unpad on hand-computed shapes', () => {
  assert.deepEqual(fitInside({ height: 10, width: 1000 }, { height: 56, width: 224 }), { height: 3, width: 224 }); // ceil(2.24)
  assert.deepEqual(paddingForPatching({ height: 3, width: 224 }, { height: 56, width: 224 }).canvas, { height: 55, width: 224 });
  // unpad of a wide image on a 4x16 grid: int(10 * 16/1000) = 0 rows of content -> pad 2 -> 0 rows kept
  assert.deepEqual(unpadWindow({ height: 10, width: 1000 }, { height: 4, width: 16 }), { top: 2, left: 0, rows: 0, cols: 16 });
  // tall: 1000x10 on 16x4 -> mirror
  assert.deepEqual(unpadWindow({ height: 1000, width: 10 }, { height: 16, width: 4 }), { top: 0, left: 2, rows: 16, cols: 0 });
  // 480x640 on OV grid 54x81 (2x3 tiles of 27): 640/480 = 1.333 < 81/54 = 1.5 -> keep rows, unpad cols:
  // new_width = int(640 * 54/480) = 72, pad (81-72)//2 = 4 -> 73 cols kept
  assert.deepEqual(unpadWindow({ height: 480, width: 640 }, { height: 54, width: 81 }), { top: 0, left: 4, rows: 54, cols: 73 });
  assert.equal(divideCanvas({ height: 111, width: 56 }, 56).length, 2);
});

test('real OV geometry: 480x640 photo -> 2x2 tiles (768x768), token count by hand', () => {
  const l = anyresLayout({ height: 480, width: 640 }, ov);
  // every pinpoint that holds >= 480x640 keeps 307200 px; 768x768 wastes the least
  assert.deepEqual(l.bestResolution, { height: 768, width: 768 });
  assert.deepEqual(l.resized, { height: 576, width: 768 });
  assert.deepEqual(l.padding.canvas, { height: 768, width: 768 });
  // grid 54x54; new_height = int(480 * 54/640) = 40 -> pad 7 rows each side
  assert.deepEqual(l.unpad, { top: 7, left: 0, rows: 40, cols: 54 });
  assert.equal(l.downsample.downsampled, false); // sqrt(2160/6561) < 1.1
  assert.equal(anyresTokenCount(l).total, 729 + 40 * 55);
  // 1080x1920: [1152, 1920] holds it whole with the least waste -> 3x5 tiles, grid 81x135;
  // new_height = int(1080 * 135/1920) = 75 -> unpad 3 rows each side; ratio sqrt(75*135/6561) = 1.2423 -> 60x108
  const big = anyresLayout({ height: 1080, width: 1920 }, ov);
  assert.deepEqual(big.bestResolution, { height: 1152, width: 1920 });
  assert.deepEqual(big.unpad, { top: 3, left: 0, rows: 75, cols: 135 });
  assert.ok(big.downsample.downsampled);
  assert.deepEqual(big.finalGrid, { height: 60, width: 108 });
  assert.equal(anyresTokenCount(big, 729, true).total, 729 + 60 * 109 - 1);
});

test('anyres_max downsample threshold and Python float floor division', () => {
  assert.equal(anyresMaxDownsample({ height: 12, width: 12 }, 9, 4).downsampled, false); // ratio 1
  assert.equal(anyresMaxDownsample({ height: 13, width: 13 }, 9, 4).downsampled, false); // 1.083
  assert.deepEqual(anyresMaxDownsample({ height: 16, width: 16 }, 9, 4), { ratio: 16 / 12, downsampled: true, rows: 12, cols: 12 });
  assert.equal(pyFloorDiv(7, 2), 3);
  assert.equal(pyFloorDiv(12, Math.sqrt(192 / 144)), 10);
  assert.equal(pyFloorDiv(1, 0.1), 9); // Python: 1 // 0.1 == 9.0 although 1 / 0.1 == 10.0
  assert.equal(parseAnyresMax('anyres_max_9'), 9);
  assert.throws(() => parseAnyresMax('anyres'));
});
