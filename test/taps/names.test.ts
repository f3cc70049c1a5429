import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandHooks, formatHook, parseHook, selectLayers, validateHook } from '../../src/taps/names.js';

const dims = { lmLayers: 4, visionLayers: 2 };

test('parses and formats every hook pattern', () => {
  for (const n of ['lm.embed', 'lm.0.resid', 'lm.3.attn.k', 'lm.2.attn.v', 'lm.1.attn.probs', 'lm.0.attn.q_proj', 'logits', 'vision.1.out', 'vision.0.attn.probs', 'siglip.1.attn.probs', 'projector.out', 'image.packed', 'lm.final_norm']) {
    assert.equal(formatHook(parseHook(n)), n);
  }
});

test('unknown names and out-of-range layers fail loudly at request time', () => {
  assert.throws(() => validateHook('lm.0.attn.key', dims), /unknown hook name "lm.0.attn.key"/);
  assert.throws(() => validateHook('lm.4.attn.k', dims), /layer 4 is out of range, the language-model has layers 0..3/);
  assert.throws(() => validateHook('vision.5.out', dims), /out of range/);
  assert.throws(() => validateHook('projector.out', { lmLayers: 4, visionLayers: 0 }), /no vision tower/);
});

test('expands wildcards, ranges and last-k selections', () => {
  assert.deepEqual(expandHooks(['lm.*.attn.v'], dims), ['lm.0.attn.v', 'lm.1.attn.v', 'lm.2.attn.v', 'lm.3.attn.v']);
  assert.deepEqual(expandHooks(['lm.1-2.attn.k', 'lm.{0,3}.resid'], dims), ['lm.1.attn.k', 'lm.2.attn.k', 'lm.0.resid', 'lm.3.resid']);
  assert.deepEqual(selectLayers('-2:', 4), [2, 3]);
  assert.throws(() => selectLayers('5', 4), /out of range/);
});
