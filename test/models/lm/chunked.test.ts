// Chunked prefill: a call cut into chunks of query positions (each continuing the previous chunk's cache) must give
// HF's numbers for every tap, the logits at every position and the cache; with padding, explicit position ids and
// structured blocks whose queries and keys straddle chunk boundaries. Plus the pure helpers on hand-made tensors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadQwen2 } from '../../../src/models/qwen2/index.js';
import { type DecoderLM, type BlockSpec, span } from '../../../src/models/lm/index.js';
import { chunkBlocks, chunkBounds, concatAxis, slicePos } from '../../../src/models/lm/chunked.js';
import { f32, type Tensor } from '../../../src/tensor/tensor.js';
import { close, closeWhere, ids, LLAVA_DIR, loadRun, QWEN2_DIR, ref } from '../qwen2/helpers.js';

const IMAGE_TOKEN = 303;
const TAPS = ['lm.embed', 'lm.*.resid', 'lm.*.attn.k', 'lm.*.attn.v', 'lm.final_norm', 'logits'];
let llava: DecoderLM;
let qwen: DecoderLM;
before(async () => {
  const cfg = JSON.parse(readFileSync(join(LLAVA_DIR, 'config.json'), 'utf8'));
  llava = await loadQwen2(LLAVA_DIR, { prefix: 'language_model.', rawConfig: { model_type: 'qwen2', ...cfg.text_config }, threads: 1 });
  qwen = await loadQwen2(QWEN2_DIR, { threads: 1 });
});
after(async () => { await llava.dispose(); await qwen.dispose(); });

test('chunk helpers: bounds, position slices, concatenation, per-chunk block specs', () => {
  assert.deepEqual(chunkBounds(7, 3), [[0, 3], [3, 5], [5, 7]]);
  assert.deepEqual(chunkBounds(761, 512), [[0, 381], [381, 761]]);
  assert.deepEqual(chunkBounds(6, 6), [[0, 6]]);
  const x = f32([2, 3, 2], Float32Array.from({ length: 12 }, (_, i) => i)); // [batch, pos, d]
  assert.deepEqual([...slicePos(x, 1, 3).data], [2, 3, 4, 5, 8, 9, 10, 11]);
  const a = f32([1, 2, 1, 2], Float32Array.of(1, 2, 3, 4)); // [batch, head, pos, d]
  const b = f32([1, 2, 2, 2], Float32Array.of(5, 6, 7, 8, 9, 10, 11, 12));
  assert.deepEqual([...concatAxis([a, b], 2).data], [1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12]);
  const specs: BlockSpec[] = [{ layers: [1], queries: [2, 5, 9], keys: [0, 4, 8] }, { layers: [0], queriesFrom: 6, keys: [1] }];
  assert.deepEqual(chunkBlocks(specs, 0, 4), [{ layers: [1], queries: [2], keys: [0] }]);
  assert.deepEqual(chunkBlocks(specs, 4, 8), [{ layers: [1], queries: [5], keys: [0, 4] }, { layers: [0], queriesFrom: 6, keys: [1] }]);
  assert.deepEqual(chunkBlocks(specs, 8, 12), [{ layers: [1], queries: [9], keys: [0, 4, 8] }, { layers: [0], queriesFrom: 6, keys: [1] }]);
});

test('llava_single in chunks of 7 matches HF (taps, all logits, cache) and equals the one-pass run', async () => {
  const run = loadRun('llava_single');
  const embeds = ref(run, 'hidden_states.0') as Tensor<'float32'>;
  assert.ok(embeds.shape[1] > 3 * 7, 'the run must span several chunks');
  const out = await llava.forward({ inputsEmbeds: embeds, taps: TAPS, logitsAt: 'all', prefillChunk: 7 });
  for (let l = 0; l < 3; l++) close(out.taps.get(`lm.${l}.resid`), ref(run, `hidden_states.${l + 1}`), `resid ${l}`);
  close(out.taps.get('lm.final_norm'), ref(run, 'hidden_states.4'), 'final_norm');
  for (let l = 0; l < 4; l++) {
    close(out.taps.get(`lm.${l}.attn.k`), ref(run, `past_key_values.${l}.key`), `k ${l}`);
    close(out.cache!.values[l], ref(run, `past_key_values.${l}.value`), `cache v ${l}`);
  }
  close(out.logits, ref(run, 'logits'), 'logits');
  close(out.taps.get('logits'), ref(run, 'logits'), 'logits tap');
  assert.equal(out.cache!.length, embeds.shape[1]);
  const whole = await llava.forward({ inputsEmbeds: embeds, taps: TAPS, logitsAt: 'all', prefillChunk: Infinity });
  close(out.taps.get('lm.3.resid'), whole.taps.get('lm.3.resid')!, 'chunked vs one pass', 1e-5);
  // logits at chosen positions land in the right chunk and order
  const some = await llava.forward({ inputsEmbeds: embeds, logitsAt: [20, 3, 8], prefillChunk: 7 });
  const V = some.logits!.shape[2];
  const all = out.logits!.data;
  [20, 3, 8].forEach((p, i) => close(f32([V], some.logits!.data.slice(i * V, (i + 1) * V)), f32([V], all.slice(p * V, (p + 1) * V)), `logit at ${p}`));
});

test('structured blocks across chunk boundaries match HF (llava_mask4d_perlayer)', async () => {
  const run = loadRun('llava_mask4d_perlayer');
  const embeds = ref(run, 'hidden_states.0') as Tensor<'float32'>;
  const layers = [...(ref(run, 'attention_mask_4d.layers').data as BigInt64Array)].map(Number);
  const tokens = ids(loadRun('llava_single').get('input_ids')!)[0];
  const first = tokens.indexOf(IMAGE_TOKEN);
  const last = tokens.lastIndexOf(IMAGE_TOKEN);
  const spec: BlockSpec = { layers, queries: span(last + 1, tokens.length), keys: span(first, last + 1).filter((p) => (p - first) % 2 === 0) };
  const out = await llava.forward({ inputsEmbeds: embeds, block: [spec], taps: TAPS, logitsAt: 'all', prefillChunk: 9 });
  for (let l = 0; l < 3; l++) close(out.taps.get(`lm.${l}.resid`), ref(run, `hidden_states.${l + 1}`), `blocked resid ${l}`);
  close(out.logits, ref(run, 'logits'), 'blocked logits');
});

test('left-padded batch with explicit position ids in chunks of 3 matches HF on real tokens', async () => {
  const run = loadRun('qwen2_batch_leftpad');
  const mask = ids(ref(run, 'attention_mask'));
  const real = (b: number, p: number) => mask[b][p] === 1;
  for (const positionIds of [ids(ref(run, 'position_ids')), undefined]) {
    const out = await qwen.forward({
      inputIds: ids(ref(run, 'input_ids')), attentionMask2d: mask, ...(positionIds ? { positionIds } : {}),
      taps: ['lm.*.resid', 'lm.*.attn.k'], logitsAt: 'all', prefillChunk: 3,
    });
    for (let l = 0; l < 3; l++) closeWhere(out.taps.get(`lm.${l}.resid`), ref(run, `hidden_states.${l + 1}`), ([b, p]) => real(b, p), `resid ${l}`);
    closeWhere(out.taps.get('lm.2.attn.k'), ref(run, 'past_key_values.2.key'), ([b, , p]) => real(b, p), 'k 2');
    closeWhere(out.logits, ref(run, 'logits'), ([b, p]) => real(b, p), 'logits');
    assert.deepEqual(out.cache!.padding, mask);
  }
});

test('queryChunk keeps the scores and MLP buffers of a layer pass within the transient budget', async () => {
  const { queryChunk, TRANSIENT_BUDGET_BYTES, MIN_QUERY_CHUNK } = await import('../../../src/models/lm/chunked.js');
  // Qwen2-0.5B, 1,517 keys (a 384 px image in LLaVA-OV): 1,024 queries would need 87 MB of scores.
  const c = queryChunk(1024, { batch: 1, qHeads: 14, keys: 1517, intermediate: 4864 });
  assert.ok(c < 1024 && c >= MIN_QUERY_CHUNK, `chunk ${c}`);
  assert.ok(4 * 14 * c * 1517 <= TRANSIENT_BUDGET_BYTES);
  assert.ok(4 * 14 * (c + 1) * 1517 > TRANSIENT_BUDGET_BYTES, 'as long as the budget allows');
  // short sequences keep the cap; the MLP width counts too; batch multiplies; never below the minimum
  assert.equal(queryChunk(1024, { batch: 1, qHeads: 14, keys: 100, intermediate: 4864 }), 1024);
  assert.ok(queryChunk(1024, { batch: 1, qHeads: 2, keys: 100, intermediate: 18944 }) * 4 * 18944 <= TRANSIENT_BUDGET_BYTES);
  assert.equal(queryChunk(1024, { batch: 4, qHeads: 14, keys: 1517, intermediate: 4864 }), Math.max(MIN_QUERY_CHUNK, Math.floor(c / 4)));
  assert.equal(queryChunk(1024, { batch: 1, qHeads: 28, keys: 100_000, intermediate: 18944 }), MIN_QUERY_CHUNK);
  assert.equal(queryChunk(7, { batch: 1, qHeads: 28, keys: 100_000, intermediate: 18944 }), 7, 'an explicit small cap stays');
});
