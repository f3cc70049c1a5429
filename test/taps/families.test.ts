// Facts about a tap name come from the taps module (names.ts + the table), never from a regex in the caller: the
// encoder-baseline towers (baseline.*, siglip.*) are families like lm.* and vision.*.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HOOK_PATTERNS, layerPattern, lookupHook, tapAtLayer, tapFamily, tapLayer } from '../../src/taps/names.js';
import { isBaselineLayerTap, isBaselineTap, isLanguageModelTap, lookupTapKind } from '../../src/taps/table.js';

test('tapFamily / tapLayer / tapAtLayer over every layered tower of the vocabulary', () => {
  assert.equal(tapFamily('lm.14.attn.v'), 'lm.{L}.attn.v');
  assert.equal(tapFamily('vision.3.out'), 'vision.{L}.out');
  assert.equal(tapFamily('baseline.25.out'), 'baseline.{L}.out');
  assert.equal(tapFamily('baseline.2.attn.probs'), 'baseline.{L}.attn.probs');
  assert.equal(tapFamily('siglip.7.out'), 'siglip.{L}.out');
  for (const n of ['projector.out', 'baseline.post_norm', 'lm.embed', 'logits', 'lm.{L}.attn.v', 'foo.3.bar', 'lm.3.attn.key', '']) {
    assert.equal(tapFamily(n), n, `${n} is unchanged`);
  }
  assert.equal(tapLayer('baseline.25.out'), 25);
  assert.equal(tapLayer('lm.0.resid'), 0);
  assert.equal(tapLayer('baseline.post_norm'), null);
  assert.equal(tapLayer('foo.3.bar'), null);
  assert.equal(tapAtLayer('baseline.{L}.out', 22), 'baseline.22.out');
  // Every layered pattern of the vocabulary round-trips.
  for (const p of HOOK_PATTERNS.filter((x) => x.includes('{L}'))) {
    assert.equal(tapFamily(tapAtLayer(p, 4)), p);
    assert.equal(tapLayer(tapAtLayer(p, 4)), 4);
    assert.deepEqual(layerPattern(tapAtLayer(p, '*')), { family: p, selection: '*' });
  }
});

test('layerPattern: selections in the layer slot, not concrete layers or unknown names', () => {
  assert.deepEqual(layerPattern('baseline.3-5.out'), { family: 'baseline.{L}.out', selection: '3-5' });
  assert.deepEqual(layerPattern('vision.{0,2}.out'), { family: 'vision.{L}.out', selection: '{0,2}' });
  assert.equal(layerPattern('baseline.3.out'), undefined);
  assert.equal(layerPattern('baseline.post_norm'), undefined);
  assert.equal(layerPattern('lm.*.attn.key'), undefined);
});

test('lookupHook never throws and never answers from Object.prototype', () => {
  assert.equal(lookupHook('constructor'), undefined);
  assert.equal(lookupHook('__proto__'), undefined);
  assert.deepEqual(lookupHook('baseline.1.out'), { kind: 'baseline.out', layer: 1 });
});

test('isBaselineTap / isBaselineLayerTap / isLanguageModelTap read the table (names and families)', () => {
  for (const n of ['baseline.25.out', 'baseline.embed', 'baseline.post_norm', 'siglip.3.out', 'siglip.post_norm', 'baseline.{L}.out']) assert.ok(isBaselineTap(n), n);
  for (const n of ['vision.3.out', 'projector.out', 'lm.2.attn.v', 'image.packed', 'foo', 'constructor']) assert.ok(!isBaselineTap(n), n);
  assert.deepEqual(['baseline.25.out', 'baseline.embed', 'siglip.4.out', 'baseline.post_norm', 'siglip.post_norm', 'baseline.1.attn.probs'].map(isBaselineLayerTap), [true, true, true, false, false, false]);
  assert.deepEqual(['lm.0.attn.v', 'lm.{L}.resid', 'lm.embed', 'lm.final_norm', 'logits', 'vision.1.out', 'baseline.1.out'].map(isLanguageModelTap), [true, true, true, true, false, false, false]);
  assert.equal(lookupTapKind('baseline.{L}.out')?.producer, 'baseline');
  assert.equal(lookupTapKind('nope'), undefined);
});
