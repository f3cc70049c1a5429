import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HF_REF, HF_REF_MORE } from '../helpers/fixtures.js';
import { readAllTensors } from '../../src/tensor/safetensors.js';
import { loadImage } from '../../src/preprocess/image.js';
import { parseQwen2VLImageConfig, processQwen2VLImages, pyRound, smartResize } from '../../src/preprocess/qwen2vl-image.js';

const cases = [
  { root: HF_REF, model: 'qwen2vl_tiny', run: 'qwen2vl_single', images: ['image_a_150x200.png'] },
  { root: HF_REF, model: 'qwen2vl_tiny', run: 'qwen2vl_multi', images: ['image_b_60x200.png', 'image_c_50x70.png'] },
  { root: HF_REF_MORE, model: 'qwen2_5_vl_tiny', run: 'qwen2_5_vl_single', images: ['image_c_150x200.png'] },
];

for (const c of cases) {
  test(`${c.run}: flattened patches and image_grid_thw equal HF exactly`, async () => {
    const cfg = parseQwen2VLImageConfig(JSON.parse(readFileSync(join(c.root, 'models', c.model, 'preprocessor_config.json'), 'utf8')));
    const ref = readAllTensors(join(c.root, 'runs', `${c.run}.safetensors`));
    const images = await Promise.all(c.images.map((f) => loadImage(join(c.root, 'inputs', f))));
    const out = processQwen2VLImages(images, cfg);
    assert.deepEqual([...out.imageGridThw.data], [...(ref.get('image_grid_thw')!.data as BigInt64Array)]);
    assert.deepEqual(out.pixelValues.shape, ref.get('pixel_values')!.shape);
    assert.deepEqual(out.pixelValues.data, ref.get('pixel_values')!.data);
  });
}

test('smart_resize: Python round half to even, max/min pixel paths', () => {
  assert.equal(pyRound(2.5), 2);
  assert.equal(pyRound(3.5), 4);
  assert.equal(pyRound(-0.5), 0);
  // 50x70: 70/28 = 2.5 -> 2 (a half-up round would give 84)
  assert.deepEqual(smartResize(50, 70, 28, 3136, 15680), { height: 56, width: 56 });
  // 150x200 with max 15680: 168*196 too big -> beta = sqrt(30000/15680) -> floor -> 84x140
  assert.deepEqual(smartResize(150, 200, 28, 3136, 15680), { height: 84, width: 140 });
  // tiny-but-legal 28x30 under min_pixels 56*56 -> scaled up with ceil
  assert.deepEqual(smartResize(28, 30, 28, 3136, 15680), { height: 56, width: 84 });
  assert.throws(() => smartResize(20, 300, 28, 3136, 15680), /smaller than the 28-px minimum/);
});
