// Qwen2 against HF transformers: every hidden state, K/V, attentions, q/k/v projections, logits, 3 cached decode steps.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadQwen2 } from '../../../src/models/qwen2/index.js';
import type { DecoderLM } from '../../../src/models/lm/index.js';
import { close, ids, loadRun, QWEN2_DIR, ref } from './helpers.js';

let lm: DecoderLM;
before(async () => { lm = await loadQwen2(QWEN2_DIR, { threads: 1 }); });
after(async () => { await lm.dispose(); });

test('qwen2_prefill: all taps and full logits match HF', async () => {
  const run = loadRun('qwen2_prefill');
  const out = await lm.forward({
    inputIds: ids(ref(run, 'input_ids')),
    taps: ['lm.embed', 'lm.*.resid', 'lm.*.attn.k', 'lm.*.attn.v', 'lm.*.attn.q_proj', 'lm.*.attn.k_proj', 'lm.*.attn.v_proj', 'lm.*.attn.probs', 'lm.final_norm', 'logits'],
    logitsAt: 'all',
  });
  let worst = 0;
  const c = (name: string, r: string) => { worst = Math.max(worst, close(out.taps.get(name), ref(run, r), name)); };
  c('lm.embed', 'hidden_states.0');
  for (let l = 0; l < 3; l++) c(`lm.${l}.resid`, `hidden_states.${l + 1}`);
  c('lm.final_norm', 'hidden_states.4');
  for (let l = 0; l < 4; l++) {
    c(`lm.${l}.attn.k`, `past_key_values.${l}.key`);
    c(`lm.${l}.attn.v`, `past_key_values.${l}.value`);
    c(`lm.${l}.attn.probs`, `attentions.${l}`);
    for (const p of ['q', 'k', 'v']) c(`lm.${l}.attn.${p}_proj`, `lm.layers.${l}.self_attn.${p}_proj.output`);
  }
  c('logits', 'logits');
  assert.ok(worst < 1e-4);
  console.log(`qwen2_prefill max |diff| over all taps: ${worst.toExponential(2)}`);
  // Decode 3 steps with the cache, each step fed the reference token.
  let cache = out.cache!;
  for (let step = 1; step <= 3; step++) {
    const p = `decode${step}.`;
    const d = await lm.forward({ inputIds: ids(ref(run, `${p}input_ids`)), past: cache, taps: ['lm.*.resid', 'lm.final_norm', 'logits'] });
    for (let l = 0; l < 3; l++) close(d.taps.get(`lm.${l}.resid`), ref(run, `${p}hidden_states.${l + 1}`), `${p}resid ${l}`);
    close(d.taps.get('lm.final_norm'), ref(run, `${p}hidden_states.4`), `${p}final_norm`);
    close(d.logits, ref(run, `${p}logits`), `${p}logits`);
    for (let l = 0; l < 4; l++) {
      close(d.cache!.keys[l], ref(run, `${p}past_key_values.${l}.key`), `${p}cache key ${l}`);
      close(d.cache!.values[l], ref(run, `${p}past_key_values.${l}.value`), `${p}cache value ${l}`);
    }
    cache = d.cache!;
  }
});
