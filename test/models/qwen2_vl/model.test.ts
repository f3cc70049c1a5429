// Whole Qwen2-VL / Qwen2.5-VL models vs transformers from stored pixel_values + input_ids, with kvlens' own M-RoPE
// ids: merger output, LM hidden states, K/V, attentions, q/k/v projections, logits, one decode step at
// cache length + rope_delta, and the 1-D-positions negative control.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { HF_REF, HF_REF_MORE } from '../../helpers/fixtures.js';
import { readAllTensors } from '../../../src/tensor/safetensors.js';
import { maxAbsDiff, toF32, type Tensor } from '../../../src/tensor/tensor.js';
import { Qwen2Vl } from '../../../src/models/qwen2_vl/model.js';

const TOL = 1e-4;
function close(got: Tensor | undefined, want: Tensor | undefined, what: string): void {
  assert.ok(got && want, `${what}: missing`);
  assert.deepEqual([...got.shape], [...want.shape], `${what}: shape`);
  const d = maxAbsDiff(toF32(got), toF32(want));
  assert.ok(d <= TOL, `${what}: max |diff| ${d}`);
}
const rows = (t: Tensor) => { const [B, S] = t.shape; const v = Array.from(t.data as BigInt64Array, Number); return Array.from({ length: B }, (_, b) => v.slice(b * S, (b + 1) * S)); };

const CASES = [
  { root: HF_REF, model: 'qwen2vl_tiny', runs: ['qwen2vl_single', 'qwen2vl_multi'] },
  { root: HF_REF_MORE, model: 'qwen2_5_vl_tiny', runs: ['qwen2_5_vl_single'] },
];

for (const c of CASES) {
  test(`${c.model}: ${c.runs.join(', ')} end to end`, async () => {
    const model = await Qwen2Vl.load(join(c.root, 'models', c.model), { threads: 1 });
    try {
      for (const name of c.runs) {
        const ref = readAllTensors(join(c.root, 'runs', `${name}.safetensors`));
        const L = model.text.numLayers;
        const has = (n: string) => ref.has(n);
        const ids = rows(ref.get('input_ids')!);
        const out = await model.forward({
          inputIds: ids, pixelValues: ref.get('pixel_values')!, imageGridThw: ref.get('image_grid_thw')!,
          taps: ['image.packed', 'lm.embed', 'lm.*.resid', 'lm.*.attn.k', 'lm.*.attn.v', 'lm.*.attn.q_proj', 'lm.*.attn.k_proj', 'lm.*.attn.v_proj', 'lm.final_norm', ...(has('attentions.0') ? ['lm.*.attn.probs'] : [])],
          logitsAt: 'all',
        });
        assert.deepEqual(model.ropeIndex(ids, ref.get('image_grid_thw')!).ropeDeltas, Array.from(ref.get('rope_deltas')!.data as BigInt64Array, Number), `${name} rope deltas`);
        close(out.taps.get('image.packed'), ref.get('vision.merger_output'), `${name} merger`);
        if (has('hidden_states.0')) close(out.taps.get('lm.embed'), ref.get('hidden_states.0'), `${name} embed`);
        for (let l = 0; l < L; l++) {
          if (l < L - 1 && has(`hidden_states.${l + 1}`)) close(out.taps.get(`lm.${l}.resid`), ref.get(`hidden_states.${l + 1}`), `${name} resid ${l}`);
          if (has(`past_key_values.${l}.key`)) {
            close(out.taps.get(`lm.${l}.attn.k`), ref.get(`past_key_values.${l}.key`), `${name} key ${l}`);
            close(out.taps.get(`lm.${l}.attn.v`), ref.get(`past_key_values.${l}.value`), `${name} value ${l}`);
          }
          for (const p of ['q', 'k', 'v']) {
            const n = `lm.layers.${l}.self_attn.${p}_proj.output`;
            if (has(n)) close(out.taps.get(`lm.${l}.attn.${p}_proj`), ref.get(n), `${name} ${p}_proj ${l}`);
          }
          if (has(`attentions.${l}`)) close(out.taps.get(`lm.${l}.attn.probs`), ref.get(`attentions.${l}`), `${name} attentions ${l}`);
        }
        if (has(`hidden_states.${L}`)) close(out.taps.get('lm.final_norm'), ref.get(`hidden_states.${L}`), `${name} final norm`);
        close(out.logits, ref.get('logits'), `${name} logits`);
        // Decode step: no explicit ids -> cache length + rope_delta on all axes.
        const d = await model.continue(out.cache, rows(ref.get('decode1.input_ids')!), { taps: ['lm.embed', 'lm.final_norm'] });
        close(d.logits, ref.get('decode1.logits'), `${name} decode1 logits`);
        if (has('decode1.hidden_states.0')) close(d.taps.get('lm.final_norm') as Tensor, ref.get(`decode1.hidden_states.${L}`), `${name} decode1 final norm`);
        for (let l = 0; l < L; l++) if (has(`decode1.past_key_values.${l}.key`)) close(d.cache!.keys[l], ref.get(`decode1.past_key_values.${l}.key`), `${name} decode1 key ${l}`);
        // Negative control: plain 1-D positions on all three axes reproduce HF's "wrong" logits and differ from the real ones.
        const control = ['logits_with_1d_position_ids', 'logits_without_mrope_position_ids'].find(has);
        if (control) {
          const flat = ids.map((r) => r.map((_, i) => i));
          const o1 = await model.forward({ inputIds: ids, pixelValues: ref.get('pixel_values')!, imageGridThw: ref.get('image_grid_thw')!, mropePositionIds: [flat, flat, flat], logitsAt: 'all' });
          close(o1.logits, ref.get(control), `${name} ${control}`);
          assert.ok(maxAbsDiff(toF32(o1.logits!), toF32(ref.get('logits')!)) > 1e-3, 'M-RoPE must matter');
        }
      }
    } finally {
      await model.dispose();
    }
  });
}
