// The encoder baseline opened by model_type (SigLIP or CLIP tower with its own processor), its errors naming the file
// and field, and the CLIPImageProcessor geometry (shortest-edge resize, centre crop) on an image whose crop is known.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEncoderBaseline } from '../../../src/models/vision/encoder-baseline.js';
import { writeClipVisionCheckpoint, writeSiglipVisionCheckpoint } from '../../../src/models/synthetic/vision-towers.js';
import { clipResizeCrop, parseClipImageConfig } from '../../../src/preprocess/clip-image.js';
import { rgbImage } from '../../../src/preprocess/image.js';
import { KvlensInputError } from '../../../src/util/errors.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-baseline-'));

/** 120 x 40: three vertical stripes 40 px wide, red / green / blue. */
function stripes() {
  const img = rgbImage(120, 40);
  for (let y = 0; y < 40; y++) for (let x = 0; x < 120; x++) img.data[(y * 120 + x) * 3 + Math.floor(x / 40)] = 255;
  return img;
}

test('CLIPImageProcessor: the short side to shortest_edge (aspect kept), then the centre crop', () => {
  const cfg = parseClipImageConfig({ image_processor_type: 'CLIPImageProcessor', size: { shortest_edge: 56 }, crop_size: { height: 56, width: 56 } });
  const out = clipResizeCrop(stripes(), cfg); // 120x40 -> 168x56 -> crop x 56..112: the green stripe
  assert.deepEqual([out.width, out.height], [56, 56]);
  for (const y of [0, 28, 55]) for (const x of [8, 28, 47]) assert.deepEqual([...out.data.subarray((y * 56 + x) * 3, (y * 56 + x) * 3 + 3)], [0, 255, 0], `(${x}, ${y})`);
  assert.throws(() => parseClipImageConfig({ image_processor_type: 'SiglipImageProcessor' }), /expected CLIPImageProcessor/);
});

test('towers open by model_type with their processor; CLIP carries one CLS token, SigLIP none', async () => {
  for (const [dir, cls, kind] of [[writeClipVisionCheckpoint(join(tmp(), 'c')), 1, 'clip'], [writeSiglipVisionCheckpoint(join(tmp(), 's')), 0, 'siglip']] as const) {
    const b = await loadEncoderBaseline(dir);
    try {
      assert.deepEqual([b.kind, b.clsTokens, b.patchesPerSide], [kind, cls, 4]);
      const pixel = b.preprocess([stripes()]);
      assert.deepEqual(pixel.shape, [1, 3, 56, 56]);
      const out = await b.run(pixel, ['baseline.0.out', 'siglip.post_norm']);
      assert.equal(out.get('baseline.0.out')!.shape[1], 16 + cls);
      assert.equal(out.get('siglip.post_norm')!.shape[1], 16 + cls);
      await assert.rejects(b.run(pixel, ['vision.0.out']), /not an encoder-baseline hook/);
    } finally {
      await b.dispose();
    }
  }
});

test('a non-tower model_type or a missing preprocessor_config.json is refused naming the file', async () => {
  const dir = writeClipVisionCheckpoint(join(tmp(), 'c'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llava_next' }));
  await assert.rejects(loadEncoderBaseline(dir), (e: unknown) => e instanceof KvlensInputError && /"model_type" is "llava_next"; an encoder baseline is a vision tower/.test(e.message) && e.message.includes('config.json'));
  const dir2 = writeSiglipVisionCheckpoint(join(tmp(), 's'));
  rmSync(join(dir2, 'preprocessor_config.json'));
  await assert.rejects(loadEncoderBaseline(dir2), (e: unknown) => e instanceof KvlensInputError && e.message.includes('preprocessor_config.json'));
});
