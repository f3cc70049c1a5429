// Generates a LLaVA-NeXT checkpoint (CLIP ViT + 2-layer GELU projector + Llama-3 text model, as llama3-llava-next-8b)
// with seeded random weights in the exact Hugging Face layout (weight names of LlavaNextForConditionalGeneration),
// plus a byte-level BPE tokenizer with Llama-3 special tokens, the Llama-3 chat template and processor configs.
// Weights stream to disk tensor by tensor.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_LLAMA3_TEMPLATE } from '../../tokenizer/chat-template.js';
import { atomicWrite, decoderWeights, WeightList, writeWeights, type WeightSpec } from './weights.js';
import { clipTowerWeights } from './vision-towers.js';
import { DEFAULT_CORPUS, trainByteBpe } from './tokenizer-files.js';

export interface LlavaNextSpec {
  readonly seed: number;
  readonly vision: { hidden: number; intermediate: number; layers: number; heads: number; patch: number; image: number };
  readonly text: { hidden: number; intermediate: number; layers: number; heads: number; kvHeads: number; ropeTheta: number; vocab?: number };
  /** anyres canvases in tiles [rows, cols] (llava-v1.6: 1x2, 2x1, 2x2, 3x1, 1x3) */
  readonly tileGrids: readonly (readonly [number, number])[];
  readonly dtype: 'float32' | 'bfloat16' | 'float16';
  readonly align: number;
  readonly bpeMerges: number;
}

const V16_GRIDS: readonly (readonly [number, number])[] = [[1, 2], [2, 1], [2, 2], [3, 1], [1, 3]];

/** Tiny: 56 px tiles of 14 px patches (4 x 4 tokens per tile), CLIP 3 layers, Llama 6 layers. */
export const TINY_LLAVA_NEXT: LlavaNextSpec = {
  seed: 4321,
  vision: { hidden: 48, intermediate: 96, layers: 3, heads: 4, patch: 14, image: 56 },
  text: { hidden: 64, intermediate: 160, layers: 6, heads: 4, kvHeads: 2, ropeTheta: 500_000 },
  tileGrids: V16_GRIDS,
  dtype: 'float32',
  align: 64,
  bpeMerges: 120,
};

/** llama3-llava-next-8b: CLIP ViT-L/14-336 (24 layers; the model reads layer -2) + Llama-3-8B. */
export const LLAVA_NEXT_LLAMA3_8B: LlavaNextSpec = {
  seed: 1,
  vision: { hidden: 1024, intermediate: 4096, layers: 24, heads: 16, patch: 14, image: 336 },
  text: { hidden: 4096, intermediate: 14336, layers: 32, heads: 32, kvHeads: 8, ropeTheta: 500_000, vocab: 128320 },
  tileGrids: V16_GRIDS,
  dtype: 'float16',
  align: 4096,
  bpeMerges: 120,
};

export const LLAMA3_SPECIAL_TOKENS = ['<|endoftext|>', '<|begin_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>', '<image>'] as const;

export function llavaNextWeightSpecs(s: LlavaNextSpec, vocab: number): WeightSpec[] {
  const { vision: v, text: t } = s;
  const w = new WeightList();
  w.push('image_newline', [t.hidden], 'embedding');
  decoderWeights(w, 'language_model.model', t, vocab, { attnBias: false, lmHead: 'language_model.lm_head' });
  w.linear('multi_modal_projector.linear_1', t.hidden, v.hidden, true);
  w.linear('multi_modal_projector.linear_2', t.hidden, t.hidden, true);
  clipTowerWeights(w, 'vision_tower.vision_model', v);
  return w.specs;
}

/** Write the checkpoint into `dir` (created; files replaced atomically). Returns the directory. */
export function writeLlavaNextCheckpoint(dir: string, spec: LlavaNextSpec = TINY_LLAVA_NEXT): string {
  mkdirSync(dir, { recursive: true });
  const bpe = trainByteBpe(DEFAULT_CORPUS, spec.bpeMerges);
  const firstSpecial = 256 + bpe.merges.length;
  const ids = Object.fromEntries(LLAMA3_SPECIAL_TOKENS.map((t, i) => [t, firstSpecial + i])) as Record<(typeof LLAMA3_SPECIAL_TOKENS)[number], number>;
  const minVocab = firstSpecial + LLAMA3_SPECIAL_TOKENS.length;
  const vocab = spec.text.vocab ?? Math.ceil(minVocab / 8) * 8;
  if (vocab < minVocab) throw new Error(`vocab ${vocab} is smaller than the tokenizer's ${minVocab} tokens`);
  const { text: t, vision: v } = spec;
  const pinpoints = spec.tileGrids.map(([r, c]) => [r * v.image, c * v.image]);
  const json = (name: string, obj: unknown) => atomicWrite(join(dir, name), JSON.stringify(obj, null, 2) + '\n');
  json('config.json', {
    architectures: ['LlavaNextForConditionalGeneration'],
    image_grid_pinpoints: pinpoints,
    image_seq_length: Math.floor(v.image / v.patch) ** 2,
    image_token_index: ids['<image>'],
    model_type: 'llava_next',
    pad_token_id: ids['<|endoftext|>'],
    projector_hidden_act: 'gelu',
    text_config: {
      bos_token_id: ids['<|begin_of_text|>'], eos_token_id: ids['<|eot_id|>'], head_dim: t.hidden / t.heads, hidden_size: t.hidden,
      intermediate_size: t.intermediate, max_position_embeddings: 8192, model_type: 'llama', num_attention_heads: t.heads,
      num_hidden_layers: t.layers, num_key_value_heads: t.kvHeads, pad_token_id: ids['<|endoftext|>'], rms_norm_eps: 1e-5,
      rope_theta: t.ropeTheta, torch_dtype: spec.dtype, vocab_size: vocab,
    },
    tie_word_embeddings: false,
    torch_dtype: spec.dtype,
    vision_config: {
      hidden_size: v.hidden, image_size: v.image, intermediate_size: v.intermediate, model_type: 'clip_vision_model',
      num_attention_heads: v.heads, num_hidden_layers: v.layers, patch_size: v.patch, projection_dim: 512,
    },
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'default',
    kvlens_generated: { seed: spec.seed, note: 'random weights generated by kvlens (src/models/synthetic); not a trained model' },
  });
  json('preprocessor_config.json', {
    crop_size: { height: v.image, width: v.image }, do_center_crop: true, do_convert_rgb: true, do_normalize: true, do_pad: true,
    do_rescale: true, do_resize: true, image_grid_pinpoints: pinpoints, image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_processor_type: 'LlavaNextImageProcessor', image_std: [0.26862954, 0.26130258, 0.27577711], processor_class: 'LlavaNextProcessor',
    resample: 3, rescale_factor: 1 / 255, size: { shortest_edge: v.image },
  });
  json('processor_config.json', {
    image_token: '<image>', num_additional_image_tokens: 1, patch_size: v.patch, processor_class: 'LlavaNextProcessor', vision_feature_select_strategy: 'default',
  });
  json('generation_config.json', { bos_token_id: ids['<|begin_of_text|>'], eos_token_id: ids['<|eot_id|>'], pad_token_id: ids['<|endoftext|>'], do_sample: false });
  json('vocab.json', bpe.vocab);
  atomicWrite(join(dir, 'merges.txt'), ['#version: 0.2', ...bpe.merges].join('\n') + '\n');
  json('added_tokens.json', ids);
  const decoder = Object.fromEntries(LLAMA3_SPECIAL_TOKENS.map((tok, i) => [String(firstSpecial + i), {
    content: tok, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true,
  }]));
  json('tokenizer_config.json', {
    added_tokens_decoder: decoder, additional_special_tokens: LLAMA3_SPECIAL_TOKENS.slice(1), bos_token: '<|begin_of_text|>',
    chat_template: BUILTIN_LLAMA3_TEMPLATE, clean_up_tokenization_spaces: false, eos_token: '<|eot_id|>', errors: 'replace',
    model_max_length: 8192, pad_token: '<|endoftext|>', processor_class: 'LlavaNextProcessor', split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer', unk_token: null,
  });
  json('special_tokens_map.json', { additional_special_tokens: LLAMA3_SPECIAL_TOKENS.slice(1), bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>', pad_token: '<|endoftext|>' });
  writeWeights(join(dir, 'model.safetensors'), llavaNextWeightSpecs(spec, vocab), spec);
  return dir;
}
