// LLaVA-NeXT tiles cut short by odd padding: resized by the shortest edge (aspect kept, long side truncated) and
// centre-cropped back to the tile, as LlavaNextImageProcessor._preprocess does in transformers 4.46.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { shortestEdgeThenCrop, parseAnyresImageConfig, processAnyresImages, anyresTiles } from '../../src/preprocess/llava-onevision-image.js';
import { cropImage, type RgbImage } from '../../src/preprocess/image.js';
import { resizeRgb } from '../../src/preprocess/pil-resize.js';
import { HF_REF_MORE } from '../helpers/fixtures.js';

function pattern(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 251;
  return { width, height, data };
}

test('a 42 x 41 tile: short side 41 -> 42, long side int(42 * 42 / 41) = 43, rows [0, 42) of the 43 kept', () => {
  const tile = pattern(41, 42); // width 41, height 42
  const out = shortestEdgeThenCrop(tile, 42, 'bicubic');
  assert.deepEqual([out.width, out.height], [42, 42]);
  const resized = resizeRgb(tile, 42, 43, 'bicubic');
  assert.deepEqual(out.data, cropImage(resized, 0, 0, 42, 42).data); // top = (43 - 42) // 2 = 0
  // a wide short tile 30 x 42 (h x w): height 30 -> 42, width int(42 * 42 / 30) = 58, columns [8, 50)
  const wide = shortestEdgeThenCrop(pattern(42, 30), 42, 'bicubic');
  assert.deepEqual(wide.data, cropImage(resizeRgb(pattern(42, 30), 58, 42, 'bicubic'), 8, 0, 50, 42).data);
});

test('an odd-padding image (40 x 103 on the 42 x 126 pinpoint: resized 42 x 109, canvas 42 x 125) is processed instead of refused', async () => {
  const pp = join(HF_REF_MORE, 'models', 'llava_next_tiny', 'preprocessor_config.json');
  const cfg = parseAnyresImageConfig(JSON.parse(readFileSync(pp, 'utf8')), pp);
  const img = pattern(103, 40);
  const out = processAnyresImages([img], cfg, { patchSize: 14, maxTiles: Infinity });
  const layout = out.layouts[0];
  assert.deepEqual([layout.padding.canvas.height, layout.padding.canvas.width], [42, 125]);
  assert.equal(out.tilesPerImage[0], 4);
  assert.deepEqual(layout.tiles.map((t) => t.x1 - t.x0), [42, 42, 41]);
  const tiles = anyresTiles(img, layout, cfg);
  assert.ok(tiles.every((t) => t.width === 42 && t.height === 42));
});
