import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LLAVA_ONEVISION_7B, TINY_LLAVA_ONEVISION, writeLlavaOnevisionCheckpoint } from '../../../src/models/synthetic/llava-onevision.js';
import { LlavaOnevision } from '../../../src/models/llava_onevision/model.js';
import { WeightSet } from '../../../src/tensor/safetensors.js';
import { toF32 } from '../../../src/tensor/tensor.js';

test('LLaVA-OneVision 7B spec: Qwen2-7B text shape with an untied head, fp16', () => {
  assert.deepEqual({ ...LLAVA_ONEVISION_7B.text }, { hidden: 3584, intermediate: 18944, layers: 28, heads: 28, kvHeads: 4, ropeTheta: 1_000_000, vocab: 152064, tieEmbeddings: false });
  assert.equal(LLAVA_ONEVISION_7B.vision.layers, 26);
  assert.equal(LLAVA_ONEVISION_7B.dtype, 'float16');
});

test('an untied tiny LLaVA-OneVision (fp16) writes language_model.lm_head and its logits use it', async () => {
  const spec = { ...TINY_LLAVA_ONEVISION, dtype: 'float16' as const, text: { ...TINY_LLAVA_ONEVISION.text, tieEmbeddings: false } };
  const dir = writeLlavaOnevisionCheckpoint(mkdtempSync(join(tmpdir(), 'kvlens-untied-')), spec);
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.tie_word_embeddings, false);
  assert.equal(cfg.text_config.tie_word_embeddings, false);
  const ws = WeightSet.open(dir);
  const D = spec.text.hidden;
  const vocab = cfg.text_config.vocab_size;
  assert.deepEqual(ws.entry('language_model.lm_head.weight').shape, [vocab, D]);
  const head = toF32(ws.read('language_model.lm_head.weight'));
  const embed = toF32(ws.read('language_model.model.embed_tokens.weight'));
  const m = await LlavaOnevision.load(dir);
  try {
    const out = await m.forward({ inputIds: [[5, 6, 7, 8]], taps: ['lm.final_norm'], logitsAt: 'last' });
    const h = out.taps.get('lm.final_norm')!.data as Float32Array; // [1, 4, D]
    const last = h.subarray(3 * D, 4 * D);
    const dot = (w: Float32Array, v: number) => last.reduce((a, x, i) => a + x * w[v * D + i], 0);
    for (const v of [0, 17, vocab - 1]) {
      assert.ok(Math.abs(out.logits!.data[v] - dot(head, v)) < 1e-3, `logit ${v} = final_norm . lm_head[${v}]`);
    }
    assert.ok(Math.abs(out.logits!.data[17] - dot(embed, 17)) > 1e-3, 'not the tied embedding');
  } finally {
    await m.dispose();
  }
});
