// The one model interface every family implements (LLaVA-OneVision, standalone Qwen2, later Qwen2-VL / LLaVA-NeXT):
// a single forward that runs the image path and the language model and returns every requested tap in one map,
// text continuation on an immutable cached prefix, greedy generation, and interventions passed through to the
// decoder. Tap names are those of src/taps/names.ts, validated against `dims` before anything runs.
//
//   const m = await loadModel(dir);                                   // src/models/index.ts
//   const a = await m.forward({ inputIds, pixelValues, imageSizes, taps: ['lm.*.attn.k', 'image.packed'] });
//   const b = await m.continue(a.cache, [[...question2Ids]]);          // the image is not recomputed

import type { HookDims } from '../taps/names.js';
import type { Tensor } from '../tensor/tensor.js';
import type { BlockSpec, KvCache, Rows } from './lm/index.js';

export type { BlockSpec, KvCache, Rows };

/** Dimensions for hook validation (validateHook / expandHooks) and for consumers sizing buffers. */
export interface ModelDims extends HookDims {
  /** KV heads of the language model's attention. */
  readonly kvHeads: number;
  /** Head dimension of the language model. */
  readonly headDim: number;
  /** Residual width of the language model. */
  readonly dModel: number;
}

export type LogitsAt = 'none' | 'last' | 'all' | readonly number[];

/** Options shared by a fresh forward and a continuation. */
export interface StepOptions {
  /** Hook names or patterns (lm.*.attn.k, vision.0-2.out, image.packed, logits ...). */
  readonly taps?: readonly string[];
  /** Block chosen query -> key attention in chosen layers (absolute positions, 0 = first cached token). */
  readonly block?: readonly BlockSpec[];
  /** Additive mask [batch|1, 1, pos, past+pos] used in every layer (HF parity). */
  readonly denseMask?: Tensor<'float32'>;
  /** Per-layer additive masks overriding the shared one (HF parity of per-layer interventions). */
  readonly layerMasks?: ReadonlyMap<number, Tensor<'float32'>>;
  /** 1 = real token, 0 = padding; [batch][pos] or [batch][past+pos]. */
  readonly attentionMask2d?: Rows | Tensor;
  /** Position ids [batch][pos]; default continues the cache (or follows attentionMask2d). */
  readonly positionIds?: Rows | Tensor;
  /** Positions of this call to compute logits at (default 'last'). */
  readonly logitsAt?: LogitsAt;
}

export interface ModelForwardRequest extends StepOptions {
  /** Token ids [batch][pos], image placeholders already expanded (one image token per image feature). */
  readonly inputIds: Rows | Tensor;
  /** Image pixels as the family's processor produces them (LLaVA-OneVision: [images, tiles, C, S, S]). */
  readonly pixelValues?: Tensor;
  /** (height, width) per image, [images, 2]. */
  readonly imageSizes?: Tensor | readonly number[];
  /** Qwen2-VL / Qwen2.5-VL: (t, h, w) per image in patches, [images, 3] (instead of imageSizes). */
  readonly imageGridThw?: Tensor | readonly number[];
  /** Qwen2-VL / Qwen2.5-VL: explicit M-RoPE ids [3][batch][pos]; default computed by the model (get_rope_index). */
  readonly mropePositionIds?: readonly Rows[];
  /** Continue from this cache (left unmodified). */
  readonly past?: KvCache;
}

export interface ModelForwardResult {
  /** Every requested tap by concrete name: vision, projector, packed image features and language-model taps. */
  readonly taps: Map<string, Tensor>;
  /** [batch, logitsAt.length, vocab] */
  readonly logits?: Tensor<'float32'>;
  readonly logitsAt: readonly number[];
  /** The cache after this call (prefix + these tokens); never modified later. */
  readonly cache: KvCache;
  /** Image tokens per image of this call (absent without images). */
  readonly imageTokens?: readonly number[];
}

export interface GenerateOptions {
  readonly maxNewTokens: number;
  /** Stop ids; default: the checkpoint's eos_token_id(s). */
  readonly eos?: readonly number[];
}

export interface GenerateResult {
  /** New tokens per batch row (eos included when reached). */
  readonly tokens: number[][];
  /** The prefill's result (its taps, logits and cache). */
  readonly prefill: ModelForwardResult;
  /** The cache after the last fed token. */
  readonly cache: KvCache;
}

export interface KvlensModel {
  /** Family name, e.g. "llava_onevision" or "qwen2". */
  readonly family: string;
  readonly dims: ModelDims;
  /** Stop ids from the checkpoint config. */
  readonly eosTokenIds: readonly number[];
  forward(req: ModelForwardRequest): Promise<ModelForwardResult>;
  /** Text continuation on a cached prefix (e.g. a second question on the same image). */
  continue(cache: KvCache, inputIds: Rows | Tensor, opts?: StepOptions): Promise<ModelForwardResult>;
  /** Greedy decoding with the cache. */
  generate(req: ModelForwardRequest, opts: GenerateOptions): Promise<GenerateResult>;
  dispose(): Promise<void>;
}
