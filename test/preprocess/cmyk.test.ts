// CMYK and YCCK JPEGs decode as PIL's convert('RGB'): libjpeg's CMYK samples, then PIL's arithmetic conversion (no ICC).
// Fixtures (test/fixtures/cmyk, made by make_cmyk_fixtures.py with Pillow 12.3) carry Pillow's own RGB bytes; the flat
// blocks are also checked against values computed by hand from the formula.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cmykToRgb, decodeImage } from '../../src/preprocess/image.js';
import { FIXTURES } from '../helpers/fixtures.js';

const DIR = join(FIXTURES, 'cmyk');

for (const name of ['flat', 'photo', 'photo-progressive', 'photo-ycck']) {
  test(`CMYK JPEG ${name}: every pixel equals Pillow's convert('RGB')`, async () => {
    const img = await decodeImage(readFileSync(join(DIR, `${name}.jpg`)), name);
    const expected = readFileSync(join(DIR, `${name}.rgb`));
    assert.equal(img.data.length, expected.length);
    let differing = 0;
    for (let i = 0; i < expected.length; i++) if (img.data[i] !== expected[i]) differing++;
    assert.equal(differing, 0, `${differing} of ${expected.length} bytes differ from Pillow`);
  });
}

test('flat CMYK blocks: hand-computed R = (255-K) - round(C(255-K)/255), real black stays black', async () => {
  const img = await decodeImage(readFileSync(join(DIR, 'flat.jpg')), 'flat');
  const at = (bx: number, by: number) => Array.from(img.data.subarray(((by * 16 + 4) * 64 + bx * 16 + 4) * 3, ((by * 16 + 4) * 64 + bx * 16 + 4) * 3 + 3));
  assert.deepEqual(at(0, 0), [0, 0, 0]); // (0,0,0,255): K only -> black (sharp's profile gave about 34)
  assert.deepEqual(at(1, 0), [255, 255, 255]); // no ink
  assert.deepEqual(at(2, 0), [0, 0, 0]); // all ink
  assert.deepEqual(at(3, 0), [55, 245, 225]); // K=0: 255 - C
  // (0,128,255,64): nk=191; 191-0, 191-round(128*191/255)=191-96=95, 191-191=0
  assert.deepEqual(at(0, 1), [191, 95, 0]);
  // (30,60,90,120): nk=135; 135-round(15.88)=119, 135-round(31.76)=103, 135-round(47.65)=87
  assert.deepEqual(at(1, 1), [119, 103, 87]);
  // (10,20,30,250): nk=5; 5-round(0.196)=5, 5-round(0.39)=5, 5-round(0.59)=4
  assert.deepEqual(at(3, 1), [5, 5, 4]);
});

test('cmykToRgb rounds like MULDIV255 on every (C, K) pair', () => {
  const cmyk = new Uint8Array(256 * 256 * 4);
  for (let c = 0; c < 256; c++) for (let k = 0; k < 256; k++) { const i = (c * 256 + k) * 4; cmyk[i] = c; cmyk[i + 3] = k; }
  const rgb = cmykToRgb(cmyk, 256, 256).data;
  for (let c = 0; c < 256; c++) {
    for (let k = 0; k < 256; k++) {
      const nk = 255 - k;
      const want = nk - Math.round((c * nk) / 255); // exact division rounds half up; c*nk/255 never lands on .5
      assert.equal(rgb[(c * 256 + k) * 3], want, `C=${c} K=${k}`);
    }
  }
});
