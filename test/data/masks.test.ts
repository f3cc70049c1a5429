import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from 'fast-png';
import { decodeBmp, encodeBmp24 } from '../../src/data/bmp.js';
import { decodeSegmentation, rleDecode, rleEncode, rleFromPolygon, rleFromString, rleToString } from '../../src/data/coco-mask.js';
import { decodeImageNetSMask, decodeLabelPng, encodeImageNetSMask, encodePalettePng, vocPalette } from '../../src/data/png.js';

test('palette PNGs decode to indices, not colours (8-bit and packed 4-bit)', () => {
  // palette colours chosen so that no colour component equals its index
  const palette = [[10, 20, 30], [200, 0, 0], [0, 200, 0], [7, 7, 7]];
  const data = Uint8Array.from([0, 1, 2, 3, 3, 2]);
  const png8 = encode({ width: 3, height: 2, data, depth: 8, channels: 1, palette });
  assert.deepEqual(Array.from(decodeLabelPng(png8, 'a.png').data), [0, 1, 2, 3, 3, 2]);
  // 4-bit: row of 3 pixels packed into 2 bytes: [0x01, 0x20] = indices 0,1,2 ; [0x33, 0x20] = 3,3,2
  const png4 = encode({ width: 3, height: 2, data: Uint8Array.from([0x01, 0x20, 0x33, 0x20]), depth: 4, channels: 1, palette });
  const g = decodeLabelPng(png4, 'b.png');
  assert.equal(g.width, 3);
  assert.deepEqual(Array.from(g.data), [0, 1, 2, 3, 3, 2]);
});

test('VOC palette PNG keeps 255 (ignore) and the VOC colormap is the standard one', () => {
  const pal = vocPalette();
  assert.deepEqual(pal[1], [128, 0, 0]);
  assert.deepEqual(pal[2], [0, 128, 0]);
  assert.deepEqual(pal[3], [128, 128, 0]);
  assert.deepEqual(pal[15], [192, 128, 128]);
  assert.deepEqual(pal[255], [224, 224, 192]);
  const grid = { width: 2, height: 2, data: Uint8Array.from([0, 15, 255, 20]) };
  assert.deepEqual(Array.from(decodeLabelPng(encodePalettePng(grid), 'c.png').data), [0, 15, 255, 20]);
});

test('16-bit grey labels stay Uint16; RGB label PNGs are refused with the file name', () => {
  const g16 = encode({ width: 2, height: 1, data: Uint16Array.from([1000, 3]), depth: 16, channels: 1 });
  const d = decodeLabelPng(g16, 'g.png');
  assert.ok(d.data instanceof Uint16Array);
  assert.deepEqual(Array.from(d.data), [1000, 3]);
  const rgb = encode({ width: 1, height: 1, data: Uint8Array.from([1, 2, 3]), depth: 8, channels: 3 });
  assert.throws(() => decodeLabelPng(rgb, '/x/colormap.png'), /\/x\/colormap\.png: expected a palette or single-channel label PNG, got 3 channels/);
});

test('ImageNet-S masks: class = R + 256*G computed without uint8 overflow; 1000 = (232, 3)', () => {
  const rgb = encode({ width: 3, height: 1, data: Uint8Array.from([232, 3, 0, 44, 1, 9, 7, 0, 0]), depth: 8, channels: 3 });
  assert.deepEqual(Array.from(decodeImageNetSMask(rgb, 'm.png').data), [1000, 300, 7]);
  const round = decodeImageNetSMask(encodeImageNetSMask({ width: 2, height: 1, data: Uint16Array.from([919, 1000]) }), 'r.png');
  assert.deepEqual(Array.from(round.data), [919, 1000]);
});

test('BMP: bottom-up 24-bit rows with padding decode top-first', () => {
  // 1x2 image by hand: header 54 bytes, rows of 4 bytes (3 + 1 pad); the first stored row is the BOTTOM one.
  const bytes = new Uint8Array(54 + 8);
  const dv = new DataView(bytes.buffer);
  bytes[0] = 0x42; bytes[1] = 0x4d; dv.setUint32(10, 54, true); dv.setUint32(14, 40, true);
  dv.setInt32(18, 1, true); dv.setInt32(22, 2, true); dv.setUint16(28, 24, true);
  bytes.set([3, 2, 1], 54); // bottom pixel BGR -> RGB (1,2,3)
  bytes.set([30, 20, 10], 58); // top pixel -> (10,20,30)
  assert.deepEqual(Array.from(decodeBmp(bytes, 'h.bmp').data), [10, 20, 30, 1, 2, 3]);
  const img = { width: 3, height: 2, data: Uint8Array.from({ length: 18 }, (_, i) => i * 13) };
  assert.deepEqual(decodeBmp(encodeBmp24(img), 'r.bmp'), img);
  assert.throws(() => decodeBmp(bytes.subarray(0, 58), '/t.bmp'), /\/t\.bmp: not a readable BMP \(pixel data truncated/);
});

test('polygon rasterisation follows pycocotools (square 1..4 covers pixels 1..3), RLE is column-major', () => {
  const m = decodeSegmentation([[1, 1, 4, 1, 4, 4, 1, 4]], 6, 6, 'sq');
  const on: number[] = [];
  m.data.forEach((v, i) => { if (v) on.push(i); });
  assert.deepEqual(on, [7, 8, 9, 13, 14, 15, 19, 20, 21]); // rows 1..3 x cols 1..3 in a 6-wide grid
  const rle = rleEncode(m);
  assert.deepEqual(rle.counts, [7, 3, 3, 3, 3, 3, 14]);
  assert.equal(rleToString(rle), '733000;');
  assert.deepEqual(rleFromString('733000;', 6, 6).counts, rle.counts);
  assert.deepEqual(rleFromPolygon([1, 1, 4, 1, 4, 4, 1, 4], 6, 6).counts, rle.counts);
});

test('compressed RLE handles negative differences and large counts; bad counts are reported', () => {
  const counts = [7, 3, 3, 1, 2, 5000000, 1, 40];
  const s = rleToString({ height: 1, width: counts.reduce((a, b) => a + b), counts });
  assert.equal(s.slice(0, 4), '733N'); // 1 - 3 = -2 -> 'N'
  assert.deepEqual(rleFromString(s, 1, 1).counts, counts);
  // a column-major run: 2x2 mask with counts [1, 2, 1] -> pixels (row1,col0) and (row0,col1)
  assert.deepEqual(Array.from(rleDecode({ height: 2, width: 2, counts: [1, 2, 1] }).data), [0, 1, 1, 0]);
  assert.throws(() => rleDecode({ height: 2, width: 2, counts: [1, 2] }, 'ann 5'), /ann 5: RLE counts sum to 3, expected height\*width = 2\*2 = 4/);
  assert.throws(() => decodeSegmentation({ counts: [4], size: [2, 3] }, 2, 2, 'ann 6'), /RLE size \[2, 3\] disagrees/);
});

test('overlapping polygons of one object are united (refer getMask sums then thresholds)', () => {
  const m = decodeSegmentation([[1, 1, 4, 1, 4, 4, 1, 4], [2, 2, 5, 2, 5, 5, 2, 5]], 6, 6, 'two');
  let n = 0;
  for (const v of m.data) { assert.ok(v === 0 || v === 1); n += v; }
  assert.equal(n, 9 + 9 - 4);
});
