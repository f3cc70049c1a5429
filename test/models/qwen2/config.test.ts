import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseQwen2Config } from '../../../src/models/qwen2/config.js';
import { KvlensInputError } from '../../../src/util/errors.js';

test('qwen2 config: HF defaults for omitted fields, prefix, validation errors name the field', () => {
  const c = parseQwen2Config({ model_type: 'qwen2', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 96, vocab_size: 50 });
  assert.equal(c.rmsNormEps, 1e-6);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.hiddenAct, 'silu');
  assert.equal(c.numKvHeads, 4, 'num_key_value_heads defaults to num_attention_heads');
  assert.equal(c.headDim, 16);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.qkvBias, true);
  assert.equal(c.weights.model, 'model.');
  const d = parseQwen2Config({}, {});
  assert.equal(d.hiddenSize, 4096);
  assert.equal(d.vocabSize, 151936);
  assert.throws(() => parseQwen2Config({ hidden_size: 'big' }), (e: Error) => e instanceof KvlensInputError && /hidden_size/.test(e.message));
  assert.throws(() => parseQwen2Config({ rope_scaling: { type: 'yarn' } }), /rope type "yarn"/);
  assert.throws(() => parseQwen2Config({ hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 3 }), /multiple/);
});
