// The whole LLaVA-NeXT model (CLIP + projector + packing + Llama) vs transformers 4.46.1 from the stored
// pixel_values and input_ids: every LM hidden state, K/V, attention map, q/k/v projection, logits and one
// cached decode step of llava_next_single / llava_next_prefix.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { HF_REF_MORE } from '../../helpers/fixtures.js';
import { readAllTensors } from '../../../src/tensor/safetensors.js';
import { maxAbsDiff, toF32, type Tensor } from '../../../src/tensor/tensor.js';
import { LlavaNext } from '../../../src/models/llava_next/model.js';

const TOL = 1e-4;
let model: LlavaNext;
before(async () => { model = await LlavaNext.load(join(HF_REF_MORE, 'models', 'llava_next_tiny'), { threads: 1 }); });
after(async () => { await model.dispose(); });

function close(got: Tensor | undefined, want: Tensor | undefined, what: string): void {
  assert.ok(got && want, `${what}: missing`);
  assert.deepEqual([...got.shape], [...want.shape], `${what}: shape`);
  const d = maxAbsDiff(toF32(got), toF32(want));
  assert.ok(d <= TOL, `${what}: max |diff| ${d}`);
}

const rows = (t: Tensor) => { const [B, S] = t.shape; const v = Array.from(t.data as BigInt64Array, Number); return Array.from({ length: B }, (_, b) => v.slice(b * S, (b + 1) * S)); };

for (const name of ['llava_next_single', 'llava_next_prefix']) {
  test(`${name}: full forward from pixel_values + input_ids, then one cached decode step`, async () => {
    const ref = readAllTensors(join(HF_REF_MORE, 'runs', `${name}.safetensors`));
    const L = model.text.numLayers;
    const hasProbs = ref.has('attentions.0');
    const out = await model.forward({
      inputIds: rows(ref.get('input_ids')!), pixelValues: ref.get('pixel_values')!, imageSizes: ref.get('image_sizes')!,
      taps: ['image.packed', 'lm.embed', 'lm.*.resid', 'lm.*.attn.k', 'lm.*.attn.v', 'lm.*.attn.q_proj', 'lm.*.attn.k_proj', 'lm.*.attn.v_proj', 'lm.final_norm', ...(hasProbs ? ['lm.*.attn.probs'] : [])],
      logitsAt: 'all',
    });
    close(out.taps.get('image.packed'), ref.get('image_features.packed'), 'packed');
    close(out.taps.get('lm.embed'), ref.get('hidden_states.0'), 'embed');
    for (let l = 0; l < L - 1; l++) close(out.taps.get(`lm.${l}.resid`), ref.get(`hidden_states.${l + 1}`), `resid ${l}`);
    close(out.taps.get('lm.final_norm'), ref.get(`hidden_states.${L}`), 'final norm');
    for (let l = 0; l < L; l++) {
      close(out.taps.get(`lm.${l}.attn.k`), ref.get(`past_key_values.${l}.key`), `key ${l}`);
      close(out.taps.get(`lm.${l}.attn.v`), ref.get(`past_key_values.${l}.value`), `value ${l}`);
      for (const p of ['q', 'k', 'v']) close(out.taps.get(`lm.${l}.attn.${p}_proj`), ref.get(`lm.layers.${l}.self_attn.${p}_proj.output`), `${p}_proj ${l}`);
      if (hasProbs) close(out.taps.get(`lm.${l}.attn.probs`), ref.get(`attentions.${l}`), `attentions ${l}`);
    }
    close(out.logits, ref.get('logits'), 'logits');
    // Decode: argmax of the last logits, position = cache length (HF 4.46 legacy branch).
    const d = await model.forward({ inputIds: rows(ref.get('decode1.input_ids')!), past: out.cache, taps: ref.has('decode1.hidden_states.0') ? ['lm.embed', 'lm.final_norm'] : [] });
    close(d.logits, ref.get('decode1.logits'), 'decode1 logits');
    if (ref.has('decode1.hidden_states.0')) {
      close(d.taps.get('lm.embed'), ref.get('decode1.hidden_states.0'), 'decode1 embed');
      close(d.taps.get('lm.final_norm'), ref.get(`decode1.hidden_states.${L}`), 'decode1 final norm');
      for (let l = 0; l < L; l++) close(d.cache!.keys[l], ref.get(`decode1.past_key_values.${l}.key`), `decode1 key ${l}`);
    }
  });
}
