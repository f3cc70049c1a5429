// Llama adapter: HF defaults for omitted fields, attention_bias/mlp_bias/head_dim as data, actionable errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLlamaConfig } from '../../../src/models/llama/config.js';
import { weightNamesUnder } from '../../../src/models/lm/config.js';
import { KvlensInputError } from '../../../src/util/errors.js';

test('omitted fields take LlamaConfig defaults; no q/k/v/o bias', () => {
  const c = parseLlamaConfig({ model_type: 'llama' });
  assert.equal(c.vocabSize, 32000);
  assert.equal(c.numKvHeads, 32);
  assert.equal(c.headDim, 128);
  assert.equal(c.rmsNormEps, 1e-6);
  assert.equal(c.ropeTheta, 10000);
  assert.deepEqual([c.qkvBias, c.oBias, c.mlpBias, c.tieWordEmbeddings], [false, false, false, false]);
});

test('Llama-3 shape: GQA, explicit head_dim, rope_theta 5e5, attention_bias, prefix under language_model.', () => {
  const c = parseLlamaConfig({ hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, rope_theta: 5e5, attention_bias: true, eos_token_id: [7, 9] },
    { weights: weightNamesUnder('language_model.') });
  assert.equal(c.headDim, 32);
  assert.equal(c.ropeTheta, 5e5);
  assert.deepEqual([c.qkvBias, c.oBias], [true, true]);
  assert.deepEqual(c.eosTokenIds, [7, 9]);
  assert.equal(c.weights.lmHead, 'language_model.lm_head.weight');
});

test('scaled RoPE and bad head counts are refused with the field named', () => {
  assert.throws(() => parseLlamaConfig({ rope_scaling: { rope_type: 'llama3', factor: 8 } }), (e: unknown) => e instanceof KvlensInputError && /rope_scaling/.test((e as Error).message));
  assert.throws(() => parseLlamaConfig({ num_attention_heads: 6, num_key_value_heads: 4 }), /multiple of num_key_value_heads/);
});
