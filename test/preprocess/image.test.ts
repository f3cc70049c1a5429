import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { encode as encodePng } from 'fast-png';
import { HF_REF } from '../helpers/fixtures.js';
import { decodeImage, loadImage, sniffFormat } from '../../src/preprocess/image.js';
import { KvlensInputError } from '../../src/util/errors.js';
import { pilResize8 } from '../../src/preprocess/pil-resize.js';

const isInputError = (re: RegExp) => (e: unknown) => e instanceof KvlensInputError && re.test(e.message);

test('PNG modes follow PIL convert("RGB"): palette, grey+alpha, RGBA (alpha dropped), 16-bit', async () => {
  // palette 2x1 with a transparency entry: convert("RGB") uses the palette colours and ignores tRNS
  const pal = encodePng({ width: 2, height: 1, depth: 8, channels: 1, data: new Uint8Array([1, 0]), palette: [[10, 20, 30], [200, 100, 50]], transparency: new Uint16Array([0]) });
  assert.deepEqual([...(await decodeImage(pal)).data], [200, 100, 50, 10, 20, 30]);
  // RGBA: alpha dropped, not composited on white or black
  const rgba = encodePng({ width: 1, height: 1, depth: 8, channels: 4, data: new Uint8Array([90, 80, 70, 0]) });
  assert.deepEqual([...(await decodeImage(rgba)).data], [90, 80, 70]);
  // grey + alpha
  const la = encodePng({ width: 1, height: 1, depth: 8, channels: 2, data: new Uint8Array([77, 10]) });
  assert.deepEqual([...(await decodeImage(la)).data], [77, 77, 77]);
  // 16-bit RGB: PIL keeps the high byte
  const rgb16 = encodePng({ width: 1, height: 1, depth: 16, channels: 3, data: new Uint16Array([0x1234, 0xabcd, 0x00ff]) });
  assert.deepEqual([...(await decodeImage(rgb16)).data], [0x12, 0xab, 0x00]);
  // 16-bit grey: PIL mode I, I -> RGB clips to 255 (no rescale)
  const g16 = encodePng({ width: 3, height: 1, depth: 16, channels: 1, data: new Uint16Array([7, 255, 40000]) });
  assert.deepEqual([...(await decodeImage(g16)).data], [7, 7, 7, 255, 255, 255, 255, 255, 255]);
});

test('JPEG / WebP decode through sharp; grey JPEG replicated to RGB; no EXIF rotation', async () => {
  const src = readFileSync(join(HF_REF, 'inputs', 'image_c_50x70.png'));
  const webp = await sharp(src).webp({ lossless: true }).toBuffer();
  const ref = await decodeImage(src);
  const w = await decodeImage(webp);
  assert.deepEqual([w.width, w.height], [70, 50]);
  assert.deepEqual(w.data, ref.data); // lossless round trip
  const greyJpeg = await sharp(src).greyscale().jpeg({ quality: 95 }).toBuffer();
  const g = await decodeImage(greyJpeg);
  for (let i = 0; i < g.width * g.height; i++) assert.ok(g.data[3 * i] === g.data[3 * i + 1] && g.data[3 * i] === g.data[3 * i + 2]);
  // EXIF orientation 6 (rotate 90) is ignored, like the HF processors: size stays 70x50
  const rotated = await sharp(src).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const r = await decodeImage(rotated);
  assert.deepEqual([r.width, r.height], [70, 50]);
});

test('corrupt, truncated and unsupported images give KvlensInputError naming the input', async () => {
  const png = readFileSync(join(HF_REF, 'inputs', 'image_a_150x200.png'));
  await assert.rejects(decodeImage(png.subarray(0, Math.floor(png.length / 2)), 'half.png'), isInputError(/half\.png.*PNG/));
  const flipped = Uint8Array.from(png);
  flipped[200] ^= 0xff;
  await assert.rejects(decodeImage(flipped, 'flipped.png'), isInputError(/flipped\.png: corrupt or truncated PNG/));
  const jpeg = await sharp(png).jpeg().toBuffer();
  await assert.rejects(decodeImage(jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'cut.jpg'), isInputError(/cut\.jpg: corrupt or truncated JPEG/));
  await assert.rejects(decodeImage(new TextEncoder().encode('BM not really a bitmap'), 'x.bmp'), isInputError(/x\.bmp: unsupported or unrecognised image format/));
  await assert.rejects(decodeImage(new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'x.svg'), isInputError(/unsupported/));
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-img-'));
  await assert.rejects(loadImage(join(dir, 'missing.png')), isInputError(/missing\.png: cannot read image file \(ENOENT\)/));
  writeFileSync(join(dir, 'empty.png'), '');
  await assert.rejects(loadImage(join(dir, 'empty.png')), isInputError(/empty\.png: unsupported/));
  assert.equal(sniffFormat(png), 'png');
  assert.equal(sniffFormat(jpeg), 'jpeg');
});

test('PIL resample arithmetic on hand-computed cases', () => {
  // 2 -> 1 bilinear downscale: support widens to 2, taps at +-0.5 -> weights 0.5/0.5 -> (10 + 21 + 1) / 2 rounded half up
  assert.deepEqual([...pilResize8(new Uint8Array([10, 21]), 2, 1, 1, 1, 1, 'bilinear')], [16]);
  // constant images stay constant through bicubic up- and downscaling (coefficients sum to 1 in fixed point)
  const flat = new Uint8Array(7 * 5).fill(200);
  assert.ok(pilResize8(flat, 7, 5, 1, 13, 3, 'bicubic').every((v) => v === 200));
  // bicubic overshoot is clipped to 0..255
  const edge = new Uint8Array([0, 0, 255, 255]);
  const up = pilResize8(edge, 4, 1, 1, 8, 1, 'bicubic');
  assert.ok(up.every((v) => v >= 0 && v <= 255));
  assert.equal(up[0], 0);
  assert.equal(up[7], 255);
  // same size is a copy (PIL short-circuits)
  assert.deepEqual(pilResize8(edge, 2, 2, 1, 2, 2, 'bicubic'), edge);
});
