// Qwen2 input variants against HF: left-padded batch, packed sequences with a dense 4-D mask, bf16 weights;
// and cache semantics: a continuation on a reused cache equals the full prefill and leaves the cache intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadQwen2 } from '../../../src/models/qwen2/index.js';
import { type DecoderLM, span } from '../../../src/models/lm/index.js';
import { F32_MIN } from '../../../src/graph/builder.js';
import { f32, maxAbsDiff, type Tensor } from '../../../src/tensor/tensor.js';
import { KvlensUsageError } from '../../../src/util/errors.js';
import { close, closeWhere, ids, loadRun, QWEN2_BF16_DIR, QWEN2_DIR, ref } from './helpers.js';

let lm: DecoderLM;
before(async () => { lm = await loadQwen2(QWEN2_DIR, { threads: 1 }); });
after(async () => { await lm.dispose(); });

test('qwen2_batch_leftpad: real tokens match HF (2-D mask, explicit position ids)', async () => {
  const run = loadRun('qwen2_batch_leftpad');
  const mask = ids(ref(run, 'attention_mask'));
  const real = (b: number, p: number) => mask[b][p] === 1;
  const out = await lm.forward({
    inputIds: ids(ref(run, 'input_ids')), attentionMask2d: mask, positionIds: ids(ref(run, 'position_ids')),
    taps: ['lm.embed', 'lm.*.resid', 'lm.*.attn.k', 'lm.*.attn.v', 'lm.final_norm'], logitsAt: 'all',
  });
  closeWhere(out.taps.get('lm.embed'), ref(run, 'hidden_states.0'), ([b, p]) => real(b, p), 'embed');
  for (let l = 0; l < 3; l++) closeWhere(out.taps.get(`lm.${l}.resid`), ref(run, `hidden_states.${l + 1}`), ([b, p]) => real(b, p), `resid ${l}`);
  closeWhere(out.taps.get('lm.final_norm'), ref(run, 'hidden_states.4'), ([b, p]) => real(b, p), 'final_norm');
  closeWhere(out.logits, ref(run, 'logits'), ([b, p]) => real(b, p), 'logits');
  for (let l = 0; l < 4; l++) {
    closeWhere(out.taps.get(`lm.${l}.attn.k`), ref(run, `past_key_values.${l}.key`), ([b, , p]) => real(b, p), `k ${l}`);
    closeWhere(out.taps.get(`lm.${l}.attn.v`), ref(run, `past_key_values.${l}.value`), ([b, , p]) => real(b, p), `v ${l}`);
  }
  // Default position ids from the 2-D mask (HF generate's cumsum rule) give the same real-token logits.
  const auto = await lm.forward({ inputIds: ids(ref(run, 'input_ids')), attentionMask2d: mask, logitsAt: 'all' });
  closeWhere(auto.logits, ref(run, 'logits'), ([b, p]) => real(b, p), 'logits (derived positions)');
});

test('qwen2_mask4d_packed: dense 4-D mask with restarting position ids matches HF', async () => {
  const run = loadRun('qwen2_mask4d_packed');
  const out = await lm.forward({
    inputIds: ids(ref(run, 'input_ids')), positionIds: ids(ref(run, 'position_ids')),
    denseMask: ref(run, 'attention_mask_4d') as Tensor<'float32'>, taps: ['lm.*.resid', 'lm.*.attn.k', 'lm.*.attn.v'], logitsAt: 'all',
  });
  for (let l = 0; l < 3; l++) close(out.taps.get(`lm.${l}.resid`), ref(run, `hidden_states.${l + 1}`), `resid ${l}`);
  for (let l = 0; l < 4; l++) close(out.taps.get(`lm.${l}.attn.k`), ref(run, `past_key_values.${l}.key`), `k ${l}`);
  close(out.logits, ref(run, 'logits'), 'logits');
});

test('qwen2_bf16_weights: BF16 checkpoint (in-graph Cast, bf16 embedding rows) matches HF', async () => {
  const run = loadRun('qwen2_bf16_weights');
  const bf = await loadQwen2(QWEN2_BF16_DIR, { threads: 1 });
  try {
    const out = await bf.forward({ inputIds: ids(ref(run, 'input_ids')), taps: ['lm.embed', 'lm.*.attn.k', 'lm.final_norm'], logitsAt: 'all' });
    close(out.taps.get('lm.embed'), ref(run, 'hidden_states.0'), 'embed');
    close(out.taps.get('lm.final_norm'), ref(run, 'hidden_states.4'), 'final_norm');
    for (let l = 0; l < 4; l++) close(out.taps.get(`lm.${l}.attn.k`), ref(run, `past_key_values.${l}.key`), `k ${l}`);
    close(out.logits, ref(run, 'logits'), 'logits');
  } finally {
    await bf.dispose();
  }
});

test('a continuation on a reused cache equals the full prefill, and the cache is left unmodified', async () => {
  const run = loadRun('qwen2_prefill');
  const all = ids(ref(run, 'input_ids'));
  const full = await lm.forward({ inputIds: all, logitsAt: 'all', taps: ['lm.*.attn.k', 'lm.*.resid'] });
  const prefix = await lm.forward({ inputIds: [all[0].slice(0, 16)], logitsAt: 'none' });
  const snapshot = prefix.cache!.keys.map((k) => Float32Array.from(k.data));
  const a = await lm.forward({ inputIds: [all[0].slice(16)], past: prefix.cache, logitsAt: 'all', taps: ['lm.*.attn.k', 'lm.*.resid'] });
  const other = await lm.forward({ inputIds: [[7, 8, 9]], past: prefix.cache }); // a different question on the same prefix
  assert.equal(other.cache!.length, 19);
  const b = await lm.forward({ inputIds: [all[0].slice(16)], past: prefix.cache, logitsAt: 'all' });
  prefix.cache!.keys.forEach((k, l) => assert.equal(maxAbsDiff(k.data, snapshot[l]), 0, `cache layer ${l} mutated`));
  assert.equal(prefix.cache!.length, 16);
  const tail = (t: Tensor<'float32'>) => f32([1, 8, t.shape[2]], (t.data as Float32Array).slice(16 * t.shape[2]));
  assert.ok(maxAbsDiff(a.logits!.data, tail(full.logits!).data) < 1e-5);
  assert.equal(maxAbsDiff(a.logits!.data, b.logits!.data), 0);
  for (let l = 0; l < 4; l++) {
    assert.ok(maxAbsDiff(a.cache!.keys[l].data, full.taps.get(`lm.${l}.attn.k`)!.data) < 1e-5, `cache key ${l}`);
    assert.deepEqual(a.taps.get(`lm.${l}.attn.k`)!.shape, [1, 2, 8, 16], 'taps of a continuation cover its own positions');
  }
  // Greedy generation from the prefix reproduces HF's decode tokens.
  const gen = await lm.generate({ inputIds: all, maxNewTokens: 3, eos: [] });
  const hfTokens = [1, 2, 3].map((k) => ids(ref(run, `decode${k}.input_ids`))[0][0]);
  assert.deepEqual(gen.tokens[0], hfTokens);
  assert.equal(gen.cache.length, 26);
});

test('block specs: the structured per-layer description equals a dense per-layer mask; bad specs are rejected', async () => {
  const run = loadRun('qwen2_prefill');
  const x = ids(ref(run, 'input_ids'));
  const S = x[0].length;
  const spec = { layers: [1, 2], queries: span(12, S), keys: [0, 3, 5, 6, 7] };
  const spec2 = { layers: [2], queries: [20, 21], keys: [10, 11] };
  const dense = (specs: { queries: number[]; keys: number[] }[]) => {
    const m = new Float32Array(S * S);
    for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) m[i * S + j] = F32_MIN;
    for (const s of specs) for (const q of s.queries) for (const k of s.keys) m[q * S + k] = F32_MIN;
    return f32([1, 1, S, S], m);
  };
  const structured = await lm.forward({ inputIds: x, block: [spec, spec2], logitsAt: 'all', taps: ['lm.3.attn.probs'] });
  const viaDense = await lm.forward({ inputIds: x, layerMasks: new Map([[1, dense([spec])], [2, dense([spec, spec2])]]), logitsAt: 'all' });
  const plain = await lm.forward({ inputIds: x, logitsAt: 'all' });
  assert.ok(maxAbsDiff(structured.logits!.data, viaDense.logits!.data) < 1e-6);
  assert.ok(maxAbsDiff(structured.logits!.data, plain.logits!.data) > 1e-3, 'blocking changes the output');
  const unchanged = (a: Float32Array, b: Float32Array, rows: number) => maxAbsDiff(a.subarray(0, rows * 288), b.subarray(0, rows * 288));
  assert.equal(unchanged(structured.logits!.data, plain.logits!.data, 12), 0, 'queries before 12 are untouched');
  await assert.rejects(lm.forward({ inputIds: x, block: [{ layers: [4], queries: [1], keys: [0] }] }), KvlensUsageError);
  await assert.rejects(lm.forward({ inputIds: x, block: [{ layers: [0], queries: [S], keys: [0] }] }), /outside the sequence/);
  await assert.rejects(lm.forward({ inputIds: x, taps: ['lm.4.resid'] }), /out of range/);
  await assert.rejects(lm.forward({ inputIds: x, taps: ['vision.embed'] }), KvlensUsageError);
});
