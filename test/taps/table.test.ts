// The tap table: every hook kind has one row; facts about a tap come from it (producer, layout, heads, store views),
// and a tap a model cannot produce or a store cannot hold fails when it is resolved, before anything runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HOOK_PATTERNS, parseHook } from '../../src/taps/names.js';
import { resolveTap, resolveTaps, storedViews, TAP_TABLE, tapKind, type TapModelFacts } from '../../src/taps/table.js';

const llava: TapModelFacts = {
  dims: { lmLayers: 4, visionLayers: 2, kvHeads: 2, baselineLayers: 3 }, qHeads: 8,
  image: { visionTapLayout: { kind: 'tiles', clsTokens: 1 }, projectorLayout: 'tiles', towerView: 'base', projectorView: 'base' },
  imageHooks: ['vision.embed', 'vision.0.out', 'vision.1.out', 'vision.post_norm', 'projector.out'],
  baselineClsTokens: 1,
};
const qwen: TapModelFacts = {
  dims: { lmLayers: 4, visionLayers: 2, kvHeads: 2 }, qHeads: 4,
  image: { visionTapLayout: { kind: 'rows' }, projectorLayout: 'rows', towerView: 'patches', projectorView: 'highres' },
  imageHooks: ['vision.embed', 'vision.0.out', 'vision.1.out', 'vision.post_norm', 'projector.out', 'vision.0.attn.probs', 'vision.1.attn.probs'],
};

test('every hook pattern of the vocabulary has exactly one table row', () => {
  const kinds = new Set(HOOK_PATTERNS.map((p) => parseHook(p.replace('{L}', '0')).kind));
  assert.deepEqual([...kinds].sort(), Object.keys(TAP_TABLE).sort());
  for (const [k, row] of Object.entries(TAP_TABLE)) assert.equal(row.kind, k);
});

test('producer, layout and heads come from the table, the family deciding tiles vs rows', () => {
  assert.equal(tapKind('lm.3.attn.k').layouts[0], 'seqHeads');
  assert.equal(resolveTap('lm.1.attn.q_proj', llava).heads, 8);
  assert.equal(resolveTap('lm.1.attn.k_proj', llava).heads, 2);
  assert.equal(resolveTap('lm.1.resid', llava).heads, 1);
  const v = resolveTap('vision.0.out', llava);
  assert.deepEqual([v.info.producer, v.layout, v.clsTokens, v.towerView], ['image-path', 'tiles', 1, 'base']);
  const p = resolveTap('projector.out', llava);
  assert.deepEqual([p.layout, p.clsTokens, p.towerView], ['tiles', 0, 'base']);
  const q = resolveTap('vision.1.out', qwen);
  assert.deepEqual([q.layout, q.towerView], ['rows', 'patches']);
  assert.deepEqual([resolveTap('projector.out', qwen).layout, resolveTap('projector.out', qwen).towerView], ['rows', 'highres']);
  assert.equal(resolveTap('vision.0.attn.probs', qwen).layout, 'towerProbs');
  assert.deepEqual([resolveTap('baseline.2.out', llava).info.producer, resolveTap('baseline.2.out', llava).clsTokens], ['baseline', 1]);
});

test('misuse fails at registration: unbuilt hooks, absent towers, unstorable taps', () => {
  assert.throws(() => resolveTap('vision.0.attn.probs', llava), /not produced by this model's image path/);
  assert.throws(() => resolveTap('baseline.0.out', qwen), /no encoder-baseline tower is attached|no encoder-baseline layers/);
  assert.throws(() => resolveTap('vision.2.out', qwen), /out of range/);
  assert.throws(() => resolveTap('projector.out', { dims: { lmLayers: 2, visionLayers: 0, kvHeads: 1 }, qHeads: 1 }), /no vision tower/);
  assert.throws(() => resolveTaps(['lm.*.attn.probs'], llava, { storable: true }), /cannot be stored: attention probabilities/);
  assert.throws(() => resolveTaps(['logits'], llava, { storable: true }), /cannot be stored: logits/);
  assert.equal(resolveTaps(['lm.*.attn.v'], llava, { storable: true }).length, 4);
});

test('store views follow the table rule from the store views alone (old stores stay readable)', () => {
  assert.deepEqual(storedViews('lm.0.attn.v', ['base', 'highres', 'siglip']), ['base', 'highres']);
  assert.deepEqual(storedViews('image.packed', ['highres', 'patches', 'baseline']), ['highres']);
  assert.deepEqual(storedViews('vision.0.out', ['base', 'highres']), ['base']);
  assert.deepEqual(storedViews('vision.0.out', ['highres', 'patches']), ['patches']);
  assert.deepEqual(storedViews('projector.out', ['base', 'highres']), ['base']);
  assert.deepEqual(storedViews('projector.out', ['highres', 'patches']), ['highres']);
  assert.deepEqual(storedViews('siglip.post_norm', ['base', 'highres', 'siglip']), ['siglip']);
  assert.deepEqual(storedViews('baseline.post_norm', ['base', 'baseline']), ['baseline']);
  assert.deepEqual(storedViews('lm.0.attn.probs', ['base']), []);
});
