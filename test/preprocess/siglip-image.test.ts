import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HF_REF } from '../helpers/fixtures.js';
import { readAllTensors } from '../../src/tensor/safetensors.js';
import { loadImage } from '../../src/preprocess/image.js';
import { parseSiglipImageConfig, processSiglipImages } from '../../src/preprocess/siglip-image.js';

test('siglip run: squash-resized 50x70 -> 64x64 pixel_values are bit-identical to HF', async () => {
  const cfg = parseSiglipImageConfig(JSON.parse(readFileSync(join(HF_REF, 'models', 'siglip_vision_tiny', 'preprocessor_config.json'), 'utf8')));
  const ref = readAllTensors(join(HF_REF, 'runs', 'siglip.safetensors'));
  const img = await loadImage(join(HF_REF, 'inputs', 'image_c_50x70.png'));
  assert.deepEqual(img.data, new Uint8Array(ref.get('image_c.rgb_uint8')!.data as Uint8Array));
  const pv = processSiglipImages([img], cfg);
  const want = ref.get('pixel_values')!;
  assert.deepEqual(pv.shape, want.shape);
  assert.deepEqual(pv.data, want.data);
});

test('siglip config: wrong processor type is a KvlensInputError naming the field', () => {
  assert.throws(() => parseSiglipImageConfig({ image_processor_type: 'CLIPImageProcessor' }), /image_processor_type/);
});
