import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { writeLlavaOnevisionCheckpoint, TINY_LLAVA_ONEVISION } from '../../../src/models/synthetic/llava-onevision.js';
import { WeightSet } from '../../../src/tensor/safetensors.js';
import { HF_REF } from '../../helpers/fixtures.js';

test('generated tiny checkpoint has the HF weight layout of a real LLaVA-OneVision checkpoint', () => {
  const dir = writeLlavaOnevisionCheckpoint(mkdtempSync(join(tmpdir(), 'kvlens-tiny-')));
  const ours = WeightSet.open(dir);
  const ref = WeightSet.open(join(HF_REF, 'models', 'llava_onevision_tiny'));
  // Same set of weight names modulo layer counts: every reference name pattern exists in ours and vice versa.
  const pattern = (n: string) => n.replace(/\.layers\.\d+\./, '.layers.N.');
  assert.deepEqual(new Set(ours.names().map(pattern)), new Set(ref.names().map(pattern)));
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.text_config.num_hidden_layers, TINY_LLAVA_ONEVISION.text.layers);
  const vocab = cfg.text_config.vocab_size;
  assert.deepEqual(ours.entry('language_model.model.embed_tokens.weight').shape, [vocab, 64]);
  assert.ok(cfg.image_token_index < vocab);
  // Deterministic: a second generation is byte-identical.
  const dir2 = writeLlavaOnevisionCheckpoint(mkdtempSync(join(tmpdir(), 'kvlens-tiny-')));
  assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(readFileSync(join(dir2, 'model.safetensors'))));
  assert.ok(readFileSync(join(dir, 'merges.txt')).equals(readFileSync(join(dir2, 'merges.txt'))));
});

test('its chat template renders the lmms-eval LLaVA-OneVision prompt', () => {
  const dir = writeLlavaOnevisionCheckpoint(mkdtempSync(join(tmpdir(), 'kvlens-tiny-')));
  const tc = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
  const tpl = new Template(tc.chat_template);
  const messages = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Is there a circle in the image?\nAnswer the question using a single word or phrase.' }] }];
  assert.equal(
    tpl.render({ messages, add_generation_prompt: true }),
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\nIs there a circle in the image?\nAnswer the question using a single word or phrase.<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.equal(
    tpl.render({ messages: [{ role: 'user', content: 'hi' }], add_generation_prompt: false, add_system_prompt: false }),
    '<|im_start|>user\nhi<|im_end|>\n',
  );
});

test('at the real 0.5B shape the SigLIP position table is floor(384/14)^2 = 729 (written header only, no weights read)', async () => {
  const { LLAVA_ONEVISION_0_5B } = await import('../../../src/models/synthetic/llava-onevision.js');
  // A tiny stand-in with the real vision geometry: 384 px images, 14 px patches.
  const spec = { ...TINY_LLAVA_ONEVISION, vision: { ...TINY_LLAVA_ONEVISION.vision, image: LLAVA_ONEVISION_0_5B.vision.image, patch: 14 } };
  const dir = writeLlavaOnevisionCheckpoint(mkdtempSync(join(tmpdir(), 'kvlens-tiny-')), spec);
  assert.deepEqual(WeightSet.open(dir).entry('vision_tower.vision_model.embeddings.position_embedding.weight').shape, [729, 64]);
  assert.equal(JSON.parse(readFileSync(join(dir, 'processor_config.json'), 'utf8')).num_image_tokens, 729);
});

test('a tile size that is not a multiple of the patch (SigLIP-so400m 384/14 geometry) loads and runs: the conv floors', async () => {
  const { loadModel } = await import('../../../src/models/index.js');
  const { LlavaOnevisionProcessor } = await import('../../../src/preprocess/processor.js');
  const { HF_REF: ref } = await import('../../helpers/fixtures.js');
  // 60 px tiles, 14 px patches -> floor(60/14) = 4 patches per side, 16 tokens per tile (the last 4 px never seen).
  const spec = { ...TINY_LLAVA_ONEVISION, vision: { ...TINY_LLAVA_ONEVISION.vision, image: 60, patch: 14 }, maxGrid: 2 };
  const dir = writeLlavaOnevisionCheckpoint(mkdtempSync(join(tmpdir(), 'kvlens-tiny-')), spec);
  const model = await loadModel(dir, { threads: 1 });
  try {
    const proc = await LlavaOnevisionProcessor.fromPretrained(dir);
    const p = await proc.prepare({ images: [join(ref, 'inputs/image_a_150x200.png')], question: 'What is it?', systemPrompt: null });
    const out = await model.forward({ inputIds: p.inputIds, pixelValues: p.pixelValues!, imageSizes: p.imageSizes!, taps: ['projector.out', 'image.packed'] });
    const proj = out.taps.get('projector.out')!;
    assert.equal(proj.shape[1], 16, 'tokens per tile');
    const nImage = Array.from(p.inputIds.data as BigInt64Array).filter((x) => Number(x) === proc.imageTokenId).length;
    assert.equal(out.taps.get('image.packed')!.shape[0], nImage, 'packed features fill every image token');
  } finally {
    await model.dispose();
  }
});
