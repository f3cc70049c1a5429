// Generates Qwen2.5-VL (model_type qwen2_5_vl: RMSNorm ViT with SwiGLU MLPs, window attention except the
// fullatt_block_indexes blocks) or Qwen2-VL (qwen2_vl: LayerNorm ViT with fc1/fc2 MLPs, full attention) checkpoints
// with seeded random weights in the exact Hugging Face layout (visual.* + model.* + untied lm_head), a byte-level
// BPE tokenizer with the Qwen2-VL special tokens, the Qwen2-VL chat template and Qwen2VLImageProcessor config.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_QWEN2VL_TEMPLATE } from '../../tokenizer/chat-template.js';
import { atomicWrite, decoderWeights, WeightList, writeWeights, type WeightSpec } from './weights.js';
import { DEFAULT_CORPUS, trainByteBpe } from './tokenizer-files.js';

export interface Qwen2VlSpec {
  readonly variant: 'qwen2_vl' | 'qwen2_5_vl';
  readonly seed: number;
  /** dim = ViT width; intermediate = MLP width (qwen2_vl: dim * mlp_ratio); window in px (qwen2_5_vl) */
  readonly vision: { dim: number; intermediate: number; depth: number; heads: number; patch: number; fullAttBlocks: readonly number[]; window: number };
  readonly text: { hidden: number; intermediate: number; layers: number; heads: number; kvHeads: number; ropeTheta: number; mropeSection: readonly number[]; vocab?: number };
  /** Qwen2VLImageProcessor pixel budget */
  readonly minPixels: number;
  readonly maxPixels: number;
  readonly dtype: 'float32' | 'bfloat16' | 'float16';
  readonly align: number;
  readonly bpeMerges: number;
}

/** Tiny Qwen2.5-VL: 4 ViT blocks (1 and 3 full attention, 0 and 2 in 56 px windows), 6 LM layers; up to 16 x 16 merged tokens. */
export const TINY_QWEN2_5_VL: Qwen2VlSpec = {
  variant: 'qwen2_5_vl',
  seed: 2025,
  vision: { dim: 64, intermediate: 160, depth: 4, heads: 4, patch: 14, fullAttBlocks: [1, 3], window: 56 },
  text: { hidden: 64, intermediate: 176, layers: 6, heads: 4, kvHeads: 2, ropeTheta: 1_000_000, mropeSection: [2, 3, 3] },
  minPixels: 56 * 56,
  maxPixels: 28 * 28 * 256,
  dtype: 'float32',
  align: 64,
  bpeMerges: 120,
};

/** Tiny Qwen2-VL: 3 LayerNorm ViT blocks, full attention. */
export const TINY_QWEN2_VL: Qwen2VlSpec = {
  ...TINY_QWEN2_5_VL,
  variant: 'qwen2_vl',
  seed: 2024,
  vision: { dim: 32, intermediate: 64, depth: 3, heads: 4, patch: 14, fullAttBlocks: [], window: 0 },
};

/** Qwen2.5-VL-7B-Instruct shapes. */
export const QWEN2_5_VL_7B: Qwen2VlSpec = {
  variant: 'qwen2_5_vl',
  seed: 1,
  vision: { dim: 1280, intermediate: 3420, depth: 32, heads: 16, patch: 14, fullAttBlocks: [7, 15, 23, 31], window: 112 },
  text: { hidden: 3584, intermediate: 18944, layers: 28, heads: 28, kvHeads: 4, ropeTheta: 1_000_000, mropeSection: [16, 24, 24], vocab: 152064 },
  minPixels: 3136,
  maxPixels: 12845056,
  dtype: 'float16',
  align: 4096,
  bpeMerges: 120,
};

export const QWEN2VL_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|image_pad|>', '<|video_pad|>', '<|vision_start|>', '<|vision_end|>'] as const;

export function qwen2VlWeightSpecs(s: Qwen2VlSpec, vocab: number): WeightSpec[] {
  const { vision: v, text: t } = s;
  const w = new WeightList();
  decoderWeights(w, 'model', t, vocab, { attnBias: true, lmHead: 'lm_head' });
  const is25 = s.variant === 'qwen2_5_vl';
  for (let b = 0; b < v.depth; b++) {
    const p = `visual.blocks.${b}`;
    w.linear(`${p}.attn.proj`, v.dim, v.dim, true);
    w.linear(`${p}.attn.qkv`, 3 * v.dim, v.dim, true);
    if (is25) {
      w.linear(`${p}.mlp.down_proj`, v.dim, v.intermediate, true);
      w.linear(`${p}.mlp.gate_proj`, v.intermediate, v.dim, true);
      w.linear(`${p}.mlp.up_proj`, v.intermediate, v.dim, true);
    } else {
      w.linear(`${p}.mlp.fc1`, v.intermediate, v.dim, true);
      w.linear(`${p}.mlp.fc2`, v.dim, v.intermediate, true);
    }
    w.norm(`${p}.norm1`, v.dim, !is25);
    w.norm(`${p}.norm2`, v.dim, !is25);
  }
  const merged = v.dim * 4; // 2 x 2 merge
  w.norm('visual.merger.ln_q', v.dim, !is25);
  w.linear('visual.merger.mlp.0', merged, merged, true);
  w.linear('visual.merger.mlp.2', t.hidden, merged, true);
  w.push('visual.patch_embed.proj.weight', [v.dim, 3, 2, v.patch, v.patch], 'linear', 3 * 2 * v.patch * v.patch);
  return w.specs;
}

/** Write the checkpoint into `dir` (created; files replaced atomically). Returns the directory. */
export function writeQwen2VlCheckpoint(dir: string, spec: Qwen2VlSpec = TINY_QWEN2_5_VL): string {
  mkdirSync(dir, { recursive: true });
  const bpe = trainByteBpe(DEFAULT_CORPUS, spec.bpeMerges);
  const firstSpecial = 256 + bpe.merges.length;
  const ids = Object.fromEntries(QWEN2VL_SPECIAL_TOKENS.map((t, i) => [t, firstSpecial + i])) as Record<(typeof QWEN2VL_SPECIAL_TOKENS)[number], number>;
  const minVocab = firstSpecial + QWEN2VL_SPECIAL_TOKENS.length;
  const vocab = spec.text.vocab ?? Math.ceil(minVocab / 8) * 8;
  if (vocab < minVocab) throw new Error(`vocab ${vocab} is smaller than the tokenizer's ${minVocab} tokens`);
  const { text: t, vision: v } = spec;
  const is25 = spec.variant === 'qwen2_5_vl';
  const json = (name: string, obj: unknown) => atomicWrite(join(dir, name), JSON.stringify(obj, null, 2) + '\n');
  const visionConfig = is25
    ? { depth: v.depth, fullatt_block_indexes: v.fullAttBlocks, hidden_act: 'silu', hidden_size: v.dim, intermediate_size: v.intermediate, model_type: 'qwen2_5_vl', num_heads: v.heads, out_hidden_size: t.hidden, patch_size: v.patch, spatial_merge_size: 2, temporal_patch_size: 2, tokens_per_second: 2, window_size: v.window }
    : { depth: v.depth, embed_dim: v.dim, hidden_act: 'quick_gelu', hidden_size: t.hidden, mlp_ratio: v.intermediate / v.dim, model_type: 'qwen2_vl', num_heads: v.heads, patch_size: v.patch, spatial_merge_size: 2, temporal_patch_size: 2 };
  json('config.json', {
    architectures: [is25 ? 'Qwen2_5_VLForConditionalGeneration' : 'Qwen2VLForConditionalGeneration'],
    bos_token_id: ids['<|endoftext|>'], eos_token_id: ids['<|im_end|>'], hidden_act: 'silu', hidden_size: t.hidden,
    image_token_id: ids['<|image_pad|>'], intermediate_size: t.intermediate, max_position_embeddings: 32768, max_window_layers: t.layers,
    model_type: spec.variant, num_attention_heads: t.heads, num_hidden_layers: t.layers, num_key_value_heads: t.kvHeads, rms_norm_eps: 1e-6,
    rope_scaling: { mrope_section: t.mropeSection, rope_type: 'default', type: 'default' }, rope_theta: t.ropeTheta, sliding_window: 32768,
    tie_word_embeddings: false, torch_dtype: spec.dtype, use_cache: true, use_sliding_window: false,
    video_token_id: ids['<|video_pad|>'], vision_config: visionConfig, vision_end_token_id: ids['<|vision_end|>'],
    vision_start_token_id: ids['<|vision_start|>'], vocab_size: vocab,
    kvlens_generated: { seed: spec.seed, note: 'random weights generated by kvlens (src/models/synthetic); not a trained model' },
  });
  json('preprocessor_config.json', {
    do_convert_rgb: true, do_normalize: true, do_rescale: true, do_resize: true, image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_processor_type: 'Qwen2VLImageProcessor', image_std: [0.26862954, 0.26130258, 0.27577711], max_pixels: spec.maxPixels,
    merge_size: 2, min_pixels: spec.minPixels, patch_size: v.patch, processor_class: is25 ? 'Qwen2_5_VLProcessor' : 'Qwen2VLProcessor',
    resample: 3, rescale_factor: 1 / 255, temporal_patch_size: 2,
  });
  json('generation_config.json', { bos_token_id: ids['<|endoftext|>'], eos_token_id: [ids['<|im_end|>'], ids['<|endoftext|>']], pad_token_id: ids['<|endoftext|>'], do_sample: false });
  json('vocab.json', bpe.vocab);
  atomicWrite(join(dir, 'merges.txt'), ['#version: 0.2', ...bpe.merges].join('\n') + '\n');
  json('added_tokens.json', ids);
  const decoder = Object.fromEntries(QWEN2VL_SPECIAL_TOKENS.map((tok, i) => [String(firstSpecial + i), {
    content: tok, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true,
  }]));
  json('tokenizer_config.json', {
    added_tokens_decoder: decoder, additional_special_tokens: QWEN2VL_SPECIAL_TOKENS.slice(1), bos_token: null,
    chat_template: BUILTIN_QWEN2VL_TEMPLATE, clean_up_tokenization_spaces: false, eos_token: '<|im_end|>', errors: 'replace',
    model_max_length: 32768, pad_token: '<|endoftext|>', split_special_tokens: false, tokenizer_class: 'Qwen2Tokenizer', unk_token: null,
  });
  json('special_tokens_map.json', { additional_special_tokens: QWEN2VL_SPECIAL_TOKENS.slice(1), eos_token: '<|im_end|>', pad_token: '<|endoftext|>' });
  writeWeights(join(dir, 'model.safetensors'), qwen2VlWeightSpecs(spec, vocab), spec);
  return dir;
}
