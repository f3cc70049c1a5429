import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSiglipVisionConfig, siglipDims } from '../../../src/models/siglip/config.js';

test('the real SigLIP-so400m-patch14-384 geometry parses: 27 x 27 patches, 729 tokens (the conv floors, as torch does)', () => {
  const c = siglipDims(parseSiglipVisionConfig({ model_type: 'siglip_vision_model', hidden_size: 1152, intermediate_size: 4304, num_attention_heads: 16, num_hidden_layers: 26, image_size: 384, patch_size: 14 }, 'config.json'));
  assert.equal(c.patchesPerSide, 27);
  assert.equal(c.tokens, 729);
  assert.throws(() => siglipDims(parseSiglipVisionConfig({ hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_hidden_layers: 1, image_size: 10, patch_size: 14 }, 'config.json')), /smaller than patch_size/);
});
