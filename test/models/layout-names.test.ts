// Weight-name layouts (src/models/weight-names.ts) and config spellings (src/models/hf-decoder.ts, qwen2_vl/config.ts)
// as transformers 4.46 ... v5 write them: each spelling parses to the same value, and what kvlens cannot compute
// is refused with the file and the field named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentWeightName, openModelWeights, WEIGHT_RENAMINGS } from '../../src/models/weight-names.js';
import { parseQwen2VlConfig } from '../../src/models/qwen2_vl/config.js';
import { parseLlamaConfig } from '../../src/models/llama/config.js';
import { parseQwen2Config } from '../../src/models/qwen2/config.js';
import { writeSafetensors } from '../../src/tensor/safetensors.js';
import { f32 } from '../../src/tensor/tensor.js';
import { KvlensInputError } from '../../src/util/errors.js';

test('transformers 4.52 renamings: legacy LLaVA and Qwen-VL names map to the current layout, current names stay', () => {
  const llava = WEIGHT_RENAMINGS.llava_next;
  const cases: [string, string][] = [
    ['language_model.model.layers.0.self_attn.q_proj.weight', 'model.language_model.layers.0.self_attn.q_proj.weight'],
    ['language_model.lm_head.weight', 'lm_head.weight'],
    ['vision_tower.vision_model.embeddings.patch_embedding.weight', 'model.vision_tower.vision_model.embeddings.patch_embedding.weight'],
    ['multi_modal_projector.linear_1.weight', 'model.multi_modal_projector.linear_1.weight'],
    ['image_newline', 'model.image_newline'],
    ['model.language_model.norm.weight', 'model.language_model.norm.weight'],
    ['lm_head.weight', 'lm_head.weight'],
  ];
  for (const [from, to] of cases) assert.equal(currentWeightName(llava, from), to, from);
  assert.equal(WEIGHT_RENAMINGS.llava_onevision, llava);
  const qwen = WEIGHT_RENAMINGS.qwen2_5_vl;
  const qcases: [string, string][] = [
    ['model.layers.1.mlp.up_proj.weight', 'model.language_model.layers.1.mlp.up_proj.weight'],
    ['model.embed_tokens.weight', 'model.language_model.embed_tokens.weight'],
    ['visual.blocks.0.attn.qkv.weight', 'model.visual.blocks.0.attn.qkv.weight'],
    ['model.visual.merger.ln_q.weight', 'model.visual.merger.ln_q.weight'],
    ['model.language_model.norm.weight', 'model.language_model.norm.weight'],
    ['lm_head.weight', 'lm_head.weight'],
  ];
  for (const [from, to] of qcases) assert.equal(currentWeightName(qwen, from), to, from);
  assert.equal(WEIGHT_RENAMINGS.qwen2_vl, qwen);
});

test('a weight set resolves either spelling, names the other when missing, and refuses a checkpoint holding both', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-names-'));
  writeSafetensors(join(dir, 'model.safetensors'), { 'model.image_newline': f32([2], [1, 2]), 'lm_head.weight': f32([1, 2], [3, 4]) });
  const ws = openModelWeights(dir, 'llava_next');
  assert.ok(ws.has('image_newline') && ws.has('model.image_newline'));
  assert.deepEqual([...ws.read('image_newline').data], [1, 2]);
  assert.deepEqual([...ws.read('language_model.lm_head.weight').data], [3, 4]);
  assert.deepEqual(ws.names().sort(), ['lm_head.weight', 'model.image_newline']);
  assert.throws(() => ws.entry('multi_modal_projector.linear_1.weight'), /missing weight "multi_modal_projector.linear_1.weight" \(also looked for "model.multi_modal_projector.linear_1.weight"\)/);
  const both = mkdtempSync(join(tmpdir(), 'kvlens-names-'));
  writeSafetensors(join(both, 'model.safetensors'), { image_newline: f32([2], [1, 2]), 'model.image_newline': f32([2], [1, 2]) });
  assert.throws(() => openModelWeights(both, 'llava_next'), (e: unknown) => e instanceof KvlensInputError && /"image_newline" and "model.image_newline"/.test((e as Error).message) && /model\.safetensors/.test((e as Error).message));
});

const QWEN_TEXT = {
  hidden_size: 64, intermediate_size: 176, num_attention_heads: 4, num_hidden_layers: 3, num_key_value_heads: 2, rms_norm_eps: 1e-6,
  vocab_size: 320, eos_token_id: 302, tie_word_embeddings: false,
};
const QWEN_VISION = { depth: 2, hidden_size: 64, intermediate_size: 96, num_heads: 4, out_hidden_size: 64, fullatt_block_indexes: [1], window_size: 56 };

test('Qwen2.5-VL: flat (4.46), nested text_config (4.52+, qwen2_5_vl_text) and v5 rope_parameters give one config', () => {
  const flat = parseQwen2VlConfig({ model_type: 'qwen2_5_vl', ...QWEN_TEXT, rope_theta: 1e6, rope_scaling: { type: 'mrope', mrope_section: [2, 3, 3] }, torch_dtype: 'float32', vision_config: QWEN_VISION });
  const nested = parseQwen2VlConfig({
    model_type: 'qwen2_5_vl', dtype: 'float32', vision_config: QWEN_VISION,
    text_config: { model_type: 'qwen2_5_vl_text', ...QWEN_TEXT, rope_theta: 1e6, rope_scaling: { rope_type: 'default', mrope_section: [2, 3, 3] } },
  });
  const v5 = parseQwen2VlConfig({
    model_type: 'qwen2_5_vl', vision_config: QWEN_VISION, eos_token_id: 302,
    text_config: { model_type: 'qwen2_5_vl_text', ...QWEN_TEXT, eos_token_id: undefined, rope_parameters: { rope_type: 'default', mrope_section: [2, 3, 3], rope_theta: 1e6 } },
  });
  assert.deepEqual(nested, flat);
  assert.deepEqual(v5, flat);
  assert.equal(flat.text.ropeTheta, 1e6);
  assert.deepEqual(flat.text.mropeSection, [2, 3, 3]);
  assert.deepEqual(flat.text.eosTokenIds, [302]);
  // The config class default theta (1e6) when neither spelling gives one; an omitted kv-head count is 8.
  const bare = parseQwen2VlConfig({ model_type: 'qwen2_vl', text_config: { hidden_size: 64, num_attention_heads: 8, rope_scaling: { mrope_section: [1, 1, 2] } }, vision_config: { hidden_size: 64, embed_dim: 32, num_heads: 4 } });
  assert.equal(bare.text.ropeTheta, 1e6);
  assert.equal(bare.text.numKvHeads, 8);
});

test('config fields that change the math and are not implemented are refused with the file and field', () => {
  const where = '/m/config.json';
  const isInput = (re: RegExp) => (e: unknown) => e instanceof KvlensInputError && re.test((e as Error).message) && (e as Error).message.includes(where);
  assert.throws(() => parseQwen2VlConfig({ model_type: 'qwen2_5_vl', text_config: { ...QWEN_TEXT }, vision_config: QWEN_VISION }, where), isInput(/\(text_config\).*field "rope_scaling.mrope_section" is required/));
  assert.throws(() => parseQwen2VlConfig({ model_type: 'qwen2_5_vl', text_config: { ...QWEN_TEXT, rope_parameters: { rope_type: 'yarn', mrope_section: [2, 3, 3], factor: 4 } }, vision_config: QWEN_VISION }, where), isInput(/field "rope_parameters": rope type "yarn" is not supported/));
  assert.throws(() => parseQwen2VlConfig({ model_type: 'qwen2_5_vl', ...QWEN_TEXT, rope_scaling: { mrope_section: [2, 3, 3] }, use_sliding_window: true, sliding_window: 64, max_window_layers: 1, vision_config: QWEN_VISION }, where), isInput(/field "use_sliding_window": sliding-window attention \(window 64\) on layers 1, 2/));
  assert.throws(() => parseQwen2Config({ layer_types: ['full_attention', 'sliding_attention'], num_hidden_layers: 2, sliding_window: 8 }, { where }), isInput(/field "layer_types": sliding-window attention \(window 8\) on layers 1/));
  assert.throws(() => parseLlamaConfig({ rope_parameters: { rope_type: 'llama3', factor: 8, rope_theta: 5e5 } }, { where }), isInput(/field "rope_parameters": rope type "llama3"/));
  // Not in use: a window that is switched off, or that starts after the last layer, changes nothing.
  assert.doesNotThrow(() => parseQwen2Config({ use_sliding_window: false, sliding_window: 4096, max_window_layers: 28, num_hidden_layers: 4, hidden_size: 64, num_attention_heads: 4 }));
  assert.doesNotThrow(() => parseQwen2Config({ use_sliding_window: true, sliding_window: 4096, max_window_layers: 28, num_hidden_layers: 4, hidden_size: 64, num_attention_heads: 4 }));
});

test('Llama text configs: rope_parameters (v5) carry theta; type and rope_type are the same key; a uniform per-layer-type dict is read', () => {
  const base = { hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16 };
  const legacy = parseLlamaConfig({ ...base, rope_theta: 5e5, rope_scaling: null, torch_dtype: 'bfloat16' });
  assert.equal(legacy.ropeTheta, 5e5);
  assert.deepEqual(parseLlamaConfig({ ...base, rope_parameters: { rope_type: 'default', rope_theta: 5e5 }, dtype: 'bfloat16' }), legacy);
  assert.deepEqual(parseLlamaConfig({ ...base, rope_theta: 5e5, rope_scaling: { type: 'default' } }), legacy);
  assert.deepEqual(parseLlamaConfig({ ...base, rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 5e5 } } }), legacy);
  assert.throws(() => parseLlamaConfig({ ...base, rope_parameters: { rope_type: 'default', rope_theta: 'big' } }), /field "rope_parameters.rope_theta"/);
});
