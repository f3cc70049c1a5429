// Generates a LLaVA-OneVision checkpoint with seeded random weights in the exact Hugging Face layout
// (config.json, model.safetensors, tokenizer and processor files). This is kvlens' embedded default model:
// tests, `kvlens demo` and `npm run bench` (at the real 0.5B shape) all run on checkpoints made here.
// Weights are streamed to disk tensor by tensor, so a multi-GB checkpoint never sits in memory.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWrite, decoderWeights, WeightList, writeWeights, type WeightSpec } from './weights.js';
import { siglipTowerWeights } from './vision-towers.js';
import { DEFAULT_CORPUS, SPECIAL_TOKENS, tokenizerConfig, trainByteBpe } from './tokenizer-files.js';

export interface LlavaOnevisionSpec {
  readonly seed: number;
  readonly vision: { hidden: number; intermediate: number; layers: number; heads: number; patch: number; image: number };
  /** tieEmbeddings: default true (0.5B); false adds language_model.lm_head.weight (7B, 72B) */
  readonly text: { hidden: number; intermediate: number; layers: number; heads: number; kvHeads: number; ropeTheta: number; vocab?: number; tieEmbeddings?: boolean };
  /** Largest high-resolution grid in tiles per side; pinpoints are every (r, c) tile multiple up to it. */
  readonly maxGrid: number;
  readonly anyresMax: number;
  readonly dtype: 'float32' | 'bfloat16' | 'float16';
  /** Byte alignment of tensor data (4096 lets onnxruntime mmap weights). */
  readonly align: number;
  readonly bpeMerges: number;
}

/** The embedded default: small enough for CI and the demo, deep enough for layer-wise curves. */
export const TINY_LLAVA_ONEVISION: LlavaOnevisionSpec = {
  seed: 1234,
  vision: { hidden: 64, intermediate: 128, layers: 3, heads: 4, patch: 14, image: 56 },
  text: { hidden: 64, intermediate: 176, layers: 8, heads: 4, kvHeads: 2, ropeTheta: 1_000_000 },
  maxGrid: 3,
  anyresMax: 9,
  dtype: 'float32',
  align: 64,
  bpeMerges: 120,
};

/** LLaVA-OneVision-0.5B shapes (SigLIP so400m-patch14-384 with 26 layers as used by LLaVA-OV, Qwen2-0.5B). */
export const LLAVA_ONEVISION_0_5B: LlavaOnevisionSpec = {
  seed: 1,
  vision: { hidden: 1152, intermediate: 4304, layers: 26, heads: 16, patch: 14, image: 384 },
  text: { hidden: 896, intermediate: 4864, layers: 24, heads: 14, kvHeads: 2, ropeTheta: 1_000_000, vocab: 151936 },
  maxGrid: 6,
  anyresMax: 9,
  dtype: 'float32',
  align: 4096,
  bpeMerges: 120,
};

/**
 * LLaVA-OneVision-7B shapes (llava-onevision-qwen2-7b-ov: SigLIP so400m-patch14-384, 26 layers + Qwen2-7B with an
 * untied head). fp16 on disk: the full checkpoint is ~16 GB; `npm run bench -- --only big` writes it with fewer LM layers.
 */
export const LLAVA_ONEVISION_7B: LlavaOnevisionSpec = {
  ...LLAVA_ONEVISION_0_5B,
  text: { hidden: 3584, intermediate: 18944, layers: 28, heads: 28, kvHeads: 4, ropeTheta: 1_000_000, vocab: 152064, tieEmbeddings: false },
  dtype: 'float16',
};

function weightSpecs(s: LlavaOnevisionSpec, vocab: number): WeightSpec[] {
  const { vision: v, text: t } = s;
  const w = new WeightList();
  w.push('image_newline', [t.hidden], 'embedding');
  decoderWeights(w, 'language_model.model', t, vocab, { attnBias: true, lmHead: t.tieEmbeddings === false ? 'language_model.lm_head' : undefined });
  w.linear('multi_modal_projector.linear_1', t.hidden, v.hidden, true);
  w.linear('multi_modal_projector.linear_2', t.hidden, t.hidden, true);
  siglipTowerWeights(w, 'vision_tower.vision_model', v);
  return w.specs;
}

function pinpoints(s: LlavaOnevisionSpec): number[][] {
  const out: number[][] = [];
  for (let r = 1; r <= s.maxGrid; r++) for (let c = 1; c <= s.maxGrid; c++) out.push([r * s.vision.image, c * s.vision.image]);
  return out;
}

/** Write the checkpoint into `dir` (created; files replaced atomically). Returns the directory. */
export function writeLlavaOnevisionCheckpoint(dir: string, spec: LlavaOnevisionSpec = TINY_LLAVA_ONEVISION): string {
  mkdirSync(dir, { recursive: true });
  const bpe = trainByteBpe(DEFAULT_CORPUS, spec.bpeMerges);
  const firstSpecial = 256 + bpe.merges.length;
  const specialIds = Object.fromEntries(SPECIAL_TOKENS.map((t, i) => [t, firstSpecial + i]));
  const minVocab = firstSpecial + SPECIAL_TOKENS.length;
  const vocab = spec.text.vocab ?? Math.ceil(minVocab / 8) * 8;
  if (vocab < minVocab) throw new Error(`vocab ${vocab} is smaller than the tokenizer's ${minVocab} tokens`);
  const t = spec.text;
  const v = spec.vision;
  const tied = t.tieEmbeddings !== false;
  const grid = pinpoints(spec);
  const json = (name: string, obj: unknown) => atomicWrite(join(dir, name), JSON.stringify(obj, null, 2) + '\n');

  json('config.json', {
    architectures: ['LlavaOnevisionForConditionalGeneration'],
    image_grid_pinpoints: grid,
    image_token_index: specialIds['<image>'],
    model_type: 'llava_onevision',
    projector_hidden_act: 'gelu',
    text_config: {
      eos_token_id: specialIds['<|im_end|>'], hidden_size: t.hidden, intermediate_size: t.intermediate, max_position_embeddings: 32768,
      model_type: 'qwen2', num_attention_heads: t.heads, num_hidden_layers: t.layers, num_key_value_heads: t.kvHeads,
      pad_token_id: specialIds['<|endoftext|>'], rope_theta: t.ropeTheta, tie_word_embeddings: tied, torch_dtype: spec.dtype, vocab_size: vocab,
    },
    tie_word_embeddings: tied,
    torch_dtype: spec.dtype,
    video_token_index: specialIds['<video>'],
    vision_aspect_ratio: `anyres_max_${spec.anyresMax}`,
    vision_config: {
      hidden_size: v.hidden, image_size: v.image, intermediate_size: v.intermediate, model_type: 'siglip_vision_model',
      num_attention_heads: v.heads, num_hidden_layers: v.layers, patch_size: v.patch, vision_use_head: false,
    },
    vision_feature_layer: -1,
    vision_feature_select_strategy: 'full',
    kvlens_generated: { seed: spec.seed, note: 'random weights generated by kvlens (src/models/synthetic); not a trained model' },
  });
  json('preprocessor_config.json', {
    do_convert_rgb: true, do_normalize: true, do_pad: true, do_rescale: true, do_resize: true, image_grid_pinpoints: grid,
    image_mean: [0.5, 0.5, 0.5], image_processor_type: 'LlavaOnevisionImageProcessor', image_std: [0.5, 0.5, 0.5],
    processor_class: 'LlavaOnevisionProcessor', resample: 3, rescale_factor: 1 / 255, size: { height: v.image, width: v.image },
  });
  json('processor_config.json', {
    image_token: '<image>', num_image_tokens: Math.floor(v.image / v.patch) ** 2, processor_class: 'LlavaOnevisionProcessor',
    video_token: '<video>', vision_feature_select_strategy: 'full',
  });
  json('generation_config.json', { eos_token_id: specialIds['<|im_end|>'], pad_token_id: specialIds['<|endoftext|>'], do_sample: false });
  json('vocab.json', bpe.vocab);
  atomicWrite(join(dir, 'merges.txt'), ['#version: 0.2', ...bpe.merges].join('\n') + '\n');
  json('added_tokens.json', specialIds);
  json('tokenizer_config.json', tokenizerConfig(firstSpecial));
  json('special_tokens_map.json', {
    additional_special_tokens: ['<|im_start|>', '<|im_end|>', '<image>', '<video>'],
    eos_token: '<|im_end|>', pad_token: '<|endoftext|>',
  });
  writeWeights(join(dir, 'model.safetensors'), weightSpecs(spec, vocab), spec);
  return dir;
}
