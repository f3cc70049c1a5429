import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HF_REF } from '../helpers/fixtures.js';
import { readAllTensors } from '../../src/tensor/safetensors.js';
import { loadImage } from '../../src/preprocess/image.js';
import { parseAnyresImageConfig, processAnyresImages } from '../../src/preprocess/llava-onevision-image.js';

const MODEL = join(HF_REF, 'models', 'llava_onevision_tiny');
const cfg = parseAnyresImageConfig(JSON.parse(readFileSync(join(MODEL, 'preprocessor_config.json'), 'utf8')));
const geom = { patchSize: 14, maxTiles: 9 };

function diffStats(a: Float32Array, b: Float32Array): { max: number; mean: number; nDiff: number } {
  assert.equal(a.length, b.length);
  let max = 0; let sum = 0; let nDiff = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > max) max = d;
    if (d !== 0) nDiff++;
    sum += d;
  }
  return { max, mean: sum / a.length, nDiff };
}

for (const [run, files] of [
  ['llava_single', ['image_a_150x200.png']],
  ['llava_multi', ['image_a_150x200.png', 'image_b_60x200.png', 'image_c_50x70.png']],
] as const) {
  test(`${run}: pixel_values and image_sizes from the raw PNGs`, async () => {
    const ref = readAllTensors(join(HF_REF, 'runs', `${run}.safetensors`));
    const images = await Promise.all(files.map((f) => loadImage(join(HF_REF, 'inputs', f))));
    // the decoded PNGs equal the raw uint8 images stored next to the reference (image_a in llava_single)
    for (const [k, img] of images.entries()) {
      const key = `image_${'abc'[k]}.rgb_uint8`;
      if (ref.has(key)) assert.deepEqual(img.data, new Uint8Array((ref.get(key)!.data as Uint8Array)));
    }
    const out = processAnyresImages(images, cfg, geom);
    const pv = ref.get('pixel_values')!;
    assert.deepEqual(out.pixelValues.shape, pv.shape);
    assert.deepEqual([...out.imageSizes.data], [...(ref.get('image_sizes')!.data as BigInt64Array)]);
    const s = diffStats(out.pixelValues.data, pv.data as Float32Array);
    // PIL-exact resampling and numpy-exact float32 arithmetic: bit-identical, not merely close.
    assert.deepEqual(s, { max: 0, mean: 0, nDiff: 0 });
  });
}
