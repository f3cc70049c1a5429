import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HF_REF } from '../helpers/fixtures.js';
import { rgbImage, type RgbImage } from '../../src/preprocess/image.js';
import { parseAnyresImageConfig, processAnyresImages } from '../../src/preprocess/llava-onevision-image.js';
import { anyresLayout } from '../../src/preprocess/anyres.js';
import {
  imageTokenInfos, buildTokenMap, imageTokenGrids, boxTouchesPixel, type PixelBox,
} from '../../src/preprocess/token-map.js';
import { LlavaOnevisionProcessor } from '../../src/preprocess/processor.js';

const MODEL = join(HF_REF, 'models', 'llava_onevision_tiny');
const cfg = parseAnyresImageConfig(JSON.parse(readFileSync(join(MODEL, 'preprocessor_config.json'), 'utf8')));
const geom = { patchSize: 14, maxTiles: 9 };
const opts = { pinpoints: cfg.pinpoints, tileSize: 56, patchSize: 14, maxTiles: 9 };

/** Grey image with a red square [sx0, sx1) x [sy0, sy1). */
function paintedImage(w: number, h: number, sq: PixelBox): RgbImage {
  const img = rgbImage(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inside = x >= sq.x0 && x < sq.x1 && y >= sq.y0 && y < sq.y1;
      img.data.set(inside ? [255, 0, 0] : [128, 128, 128], (y * w + x) * 3);
    }
  }
  return img;
}

/** Max red excess (R - G, in normalised units) inside one 14x14 patch of a tile of pixel_values. */
function patchRedness(pv: Float32Array, tilesPerImage: number, image: number, tile: number, pr: number, pc: number): number {
  const T = 56;
  const base = (image * tilesPerImage + tile) * 3 * T * T;
  let best = -Infinity;
  for (let y = pr * 14; y < (pr + 1) * 14; y++) {
    for (let x = pc * 14; x < (pc + 1) * 14; x++) {
      best = Math.max(best, pv[base + y * T + x] - pv[base + T * T + y * T + x]);
    }
  }
  return best;
}

/** Distance in original pixels between a box and a square (0 when they overlap). */
function gap(b: PixelBox, s: PixelBox): number {
  const dx = Math.max(s.x0 - b.x1, b.x0 - s.x1, 0);
  const dy = Math.max(s.y0 - b.y1, b.y0 - s.y1, 0);
  return Math.max(dx, dy);
}

// Probe: the token whose box contains the square sees red in its pixels; tokens far from it see none.
// Covers the odd-padding canvas (50x70: 56x111 canvas, last tile stretched), unpadded rows (60x200) and columns (200x60).
for (const [w, h, sq] of [
  [70, 50, { x0: 50, y0: 10, x1: 60, y1: 20 }],
  [70, 50, { x0: 5, y0: 30, x1: 12, y1: 42 }],
  [200, 60, { x0: 150, y0: 35, x1: 170, y1: 50 }],
  [60, 200, { x0: 10, y0: 120, x1: 30, y1: 140 }],
] as const) {
  test(`probe square ${JSON.stringify(sq)} in a ${w}x${h} image: boxes agree with the pixels`, () => {
    const img = paintedImage(w, h, sq);
    const out = processAnyresImages([img], cfg, geom);
    const layout = out.layouts[0];
    assert.equal(layout.downsample.downsampled, false);
    const infos = imageTokenInfos(0, layout, 14);
    const tilesPer = out.tilesPerImage[0];
    const pv = out.pixelValues.data;
    let hits = 0;
    for (const info of infos) {
      if (info.view === 'newline') { assert.equal(info.box, null); continue; }
      let red: number;
      if (info.view === 'base') {
        red = patchRedness(pv, tilesPer, 0, 0, info.row, info.col);
      } else {
        const gr = info.row + layout.unpad.top;
        const gc = info.col + layout.unpad.left;
        const tile = 1 + Math.floor(gr / 4) * layout.tileGrid.width + Math.floor(gc / 4);
        red = patchRedness(pv, tilesPer, 0, tile, gr % 4, gc % 4);
      }
      const b = info.box!;
      const overlapsInterior = gap(b, { x0: sq.x0 + 1, y0: sq.y0 + 1, x1: sq.x1 - 1, y1: sq.y1 - 1 }) === 0
        && b.x1 - b.x0 > 0 && b.y1 - b.y0 > 0;
      if (overlapsInterior) {
        hits++;
        assert.ok(red > 0.5, `${info.view} (${info.row},${info.col}) box ${JSON.stringify(b)} covers the square but sees redness ${red}`);
      }
      // bicubic reaches 2 output pixels; in original pixels that is at most 2 * scale, under 4 px here
      if (gap(b, sq) > 4) assert.ok(red < 0.05, `${info.view} (${info.row},${info.col}) box ${JSON.stringify(b)} is far from the square but sees ${red}`);
    }
    assert.ok(hits >= 2, 'the square must hit base and high-res tokens');
  });
}

test('base view boxes tile the whole image in raster order; high-res boxes partition the unpadded area', () => {
  for (const [h, w] of [[150, 200], [60, 200], [50, 70], [20, 30], [300, 40]] as const) {
    const layout = anyresLayout({ height: h, width: w }, opts);
    const infos = imageTokenInfos(0, layout, 14);
    const base = infos.filter((i) => i.view === 'base');
    assert.equal(base.length, 16);
    base.forEach((info, k) => {
      assert.deepEqual([info.row, info.col], [Math.floor(k / 4), k % 4]);
      assert.ok(Math.abs(info.box!.x0 - (info.col * w) / 4) < 1e-9 && Math.abs(info.box!.y1 - ((info.row + 1) * h) / 4) < 1e-9);
    });
    let area = 0;
    for (const i of base) area += (i.box!.x1 - i.box!.x0) * (i.box!.y1 - i.box!.y0);
    assert.ok(Math.abs(area - w * h) < 1e-6);
    // high-res: rows of cells left to right, top to bottom, each row closed by a newline
    const { height: rows, width: cols } = layout.finalGrid;
    const rest = infos.slice(16);
    assert.equal(rest.length, rows * (cols + 1));
    for (let r = 0; r < rows; r++) {
      assert.equal(rest[r * (cols + 1) + cols].view, 'newline');
      for (let c = 0; c < cols; c++) {
        const b = rest[r * (cols + 1) + c].box!;
        if (c > 0) assert.ok(Math.abs(b.x0 - rest[r * (cols + 1) + c - 1].box!.x1) < 1e-9, 'columns abut');
        assert.ok(b.x0 <= b.x1 && b.y0 <= b.y1 && b.x1 <= w + 1e-9 && b.y1 <= h + 1e-9);
      }
    }
    // the grid spans (almost) the whole image: unpad only strips whole padding patches
    const first = rest[0].box!;
    const last = rest[(rows - 1) * (cols + 1) + cols - 1].box!;
    assert.ok(first.x0 < 14 && first.y0 < 14 && last.x1 > w - 14 && last.y1 > h - 14, `${h}x${w}`);
  }
});

test('downsampled grid (150x200 -> 10x13): boxes partition the image, contain each probe pixel exactly once', () => {
  const layout = anyresLayout({ height: 150, width: 200 }, opts);
  const cells = imageTokenInfos(0, layout, 14).filter((i) => i.view === 'highres');
  assert.equal(cells.length, 130);
  for (const [px, py] of [[0, 0], [199, 149], [100, 75], [33, 121]]) {
    const owners = cells.filter((c) => c.box!.x0 <= px && px < c.box!.x1 && c.box!.y0 <= py && py < c.box!.y1);
    assert.equal(owners.length, 1, `pixel ${px},${py}`);
    assert.ok(boxTouchesPixel(owners[0].box!, px, py));
  }
  // cell (r, c) spans [c * 16/13, (c+1) * 16/13) patches of 14 canvas px = 12.5 original px per 14 canvas px (200/224)
  const b = cells[13 + 1].box!; // row 1, col 1
  assert.ok(Math.abs(b.x0 - (16 / 13) * 14 * (200 / 224)) < 1e-9 && Math.abs(b.y0 - (12 / 10) * 14 * (150 / 168)) < 1e-9);
});

test('token map over a prompt: text positions null, image runs flagged, newline positions', async () => {
  const proc = await LlavaOnevisionProcessor.fromPretrained(MODEL);
  const img = paintedImage(200, 60, { x0: 0, y0: 0, x1: 1, y1: 1 });
  const out = await proc.prepare({ images: [img], question: 'Q', systemPrompt: null });
  const map = out.tokenMap;
  const ids = [...out.inputIds.data].map(Number);
  assert.equal(map.length, ids.length);
  ids.forEach((id, p) => assert.equal(map.entries[p] !== null, id === 303, `position ${p}`));
  const [run] = map.runs;
  const newlines = map.entries.map((e, p) => (e?.view === 'newline' ? p - run.start : -1)).filter((p) => p >= 0);
  // 60x200: base 16, then 4 rows of 16 cells + newline -> newline offsets 16 + 17k - 1 + 1
  assert.deepEqual(newlines, [32, 49, 66, 83]);
  assert.ok(buildTokenMap(ids.length, map.runs, out.layouts, 14).entries.every((e, p) => JSON.stringify(e) === JSON.stringify(map.entries[p])));
});

test('imageTokenGrids splits [nTokens, D] into base [4,4,D] and high-res [rows,cols,D] without newlines', () => {
  const layout = anyresLayout({ height: 60, width: 200 }, opts); // 16 + 4 x (16 + 1) = 84 tokens
  const D = 2;
  const v = new Float32Array(84 * D);
  for (let t = 0; t < 84; t++) { v[t * D] = t; v[t * D + 1] = -t; }
  const { base, highres } = imageTokenGrids(v, D, layout);
  assert.deepEqual([base.rows, base.cols, highres.rows, highres.cols], [4, 4, 4, 16]);
  assert.equal(base.data[(2 * 4 + 3) * D], 11);
  // high-res (r, c) is token 16 + r * 17 + c
  assert.equal(highres.data[(1 * 16 + 0) * D], 16 + 17);
  assert.equal(highres.data[(3 * 16 + 15) * D + 1], -(16 + 3 * 17 + 15));
  assert.throws(() => imageTokenGrids(new Float32Array(10), D, layout), /expected 84 tokens/);
});
