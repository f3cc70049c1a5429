import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readAllTensors } from '../../../src/tensor/safetensors.js';
import { maxAbsDiff, toF32 } from '../../../src/tensor/tensor.js';
import { SiglipVisionModel } from '../../../src/models/siglip/model.js';
import { HF_REF } from '../../helpers/fixtures.js';

test('standalone SigLIP matches transformers: hidden states, attentions, post-LN, pooled output', async () => {
  const ref = readAllTensors(join(HF_REF, 'runs/siglip.safetensors'));
  const model = await SiglipVisionModel.load(join(HF_REF, 'models/siglip_vision_tiny'), { attentionProbs: true });
  try {
    const out = await model.forward(ref.get('pixel_values')!, { pooled: true, attentionProbs: true });
    const check = (got: Float32Array, name: string) => {
      const r = toF32(ref.get(name)!);
      const d = maxAbsDiff(got, r);
      assert.ok(d < 1e-4, `${name}: max abs diff ${d}`);
      return d;
    };
    const diffs: Record<string, number> = {};
    diffs['hidden_states.0'] = check(toF32(out.taps.get('siglip.embed')!), 'hidden_states.0');
    for (let l = 0; l < model.dims.layers; l++) {
      diffs[`hidden_states.${l + 1}`] = check(toF32(out.taps.get(`siglip.${l}.out`)!), `hidden_states.${l + 1}`);
      diffs[`attentions.${l}`] = check(toF32(out.attentionProbs![l]), `attentions.${l}`);
    }
    diffs.last_hidden_state = check(toF32(out.taps.get('siglip.post_norm')!), 'last_hidden_state');
    diffs.pooler_output = check(toF32(out.pooled!), 'pooler_output');
    console.log(diffs);
  } finally {
    await model.dispose();
  }
});
