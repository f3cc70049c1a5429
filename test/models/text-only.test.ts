// Standalone Qwen2 through loadModel and the shared model interface: greedy generation reproduces HF's decode
// tokens, continuation equals the prefill, and image inputs / vision taps are refused up front.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel, type KvlensModel } from '../../src/models/index.js';
import { readAllTensors } from '../../src/tensor/safetensors.js';
import { f32, maxAbsDiff } from '../../src/tensor/tensor.js';
import { KvlensUsageError } from '../../src/util/errors.js';
import { HF_REF } from '../helpers/fixtures.js';

let model: KvlensModel;
const run = readAllTensors(join(HF_REF, 'runs/qwen2_prefill.safetensors'));
const ids = Array.from(run.get('input_ids')!.data as BigInt64Array, Number);
before(async () => { model = await loadModel(join(HF_REF, 'models/qwen2_tiny'), { threads: 1 }); });
after(async () => { await model.dispose(); });

test('greedy generate reproduces the HF decode tokens of qwen2_prefill', async () => {
  const hf = [1, 2, 3].map((s) => Number((run.get(`decode${s}.input_ids`)!.data as BigInt64Array)[0]));
  const g = await model.generate({ inputIds: [ids] }, { maxNewTokens: 3, eos: [] });
  assert.deepEqual(g.tokens, [hf]);
  assert.equal(g.cache.length, ids.length + 2);
  const d = maxAbsDiff(g.prefill.logits!.data, (run.get('logits')!.data as Float32Array).subarray(23 * 288));
  assert.ok(d < 1e-4, `last prefill logits vs HF: ${d}`);
});

test('continue on a cached prefix equals the prefill of the whole sequence', async () => {
  const full = await model.forward({ inputIds: [ids], logitsAt: 'all' });
  const head = await model.forward({ inputIds: [ids.slice(0, 10)], taps: ['lm.1.attn.v'] });
  assert.deepEqual(head.taps.get('lm.1.attn.v')!.shape, [1, 2, 10, 16]);
  const tail = await model.continue(head.cache, [ids.slice(10)], { logitsAt: 'all' });
  const ref = f32([1, 14, 288], (full.logits!.data as Float32Array).slice(10 * 288));
  assert.ok(maxAbsDiff(tail.logits!.data, ref.data) < 1e-5);
});

test('a text-only model refuses image inputs and vision taps before running', async () => {
  await assert.rejects(model.forward({ inputIds: [ids], pixelValues: f32([1, 3, 4, 4]), imageSizes: [4, 4] }), (e: unknown) => e instanceof KvlensUsageError && /text-only/.test(e.message));
  await assert.rejects(model.forward({ inputIds: [ids], taps: ['vision.0.out'] }), (e: unknown) => e instanceof KvlensUsageError && /no vision layers/.test(e.message));
  await assert.rejects(model.forward({ inputIds: [ids], taps: ['lm.4.resid'] }), /out of range/);
  await assert.rejects(model.generate({ inputIds: [ids] }, { maxNewTokens: 0 }), /maxNewTokens/);
});
