// The one model interface every family implements (LLaVA-OneVision, standalone Qwen2, later Qwen2-VL / LLaVA-NeXT):
// a single forward that runs the image path and the language model and returns every requested tap in one map,
// text continuation on an immutable cached prefix, greedy generation, and interventions passed through to the
// decoder. Tap names are those of src/taps/names.ts, validated against `dims` before anything runs.
//
//   const m = await loadModel(dir);                                   // src/models/index.ts
//   const a = await m.forward({ inputIds, pixelValues, imageSizes, taps: ['lm.*.attn.k', 'image.packed'] });
//   const b = await m.continue(a.cache, [[...question2Ids]]);          // the image is not recomputed

import type { HookDims } from '../taps/names.js';
import type { ResolvedTap } from '../taps/table.js';
import type { Tensor } from '../tensor/tensor.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import type { PromptInput } from '../tokenizer/prompt.js';
import type { ImageInput, PrepareInput } from '../preprocess/processor.js';
import type { PreparedInputs } from '../preprocess/load.js';
import type { TokenMap, ViewTokens } from '../preprocess/token-map.js';
import type { BlockSpec, KvCache, Rows } from './lm/index.js';

export type { BlockSpec, KvCache, Rows, ResolvedTap, TokenMap, ViewTokens, ImageInput, PromptInput, PrepareInput, PreparedInputs };

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
  /**
   * Images already encoded by `encodeImages`, one entry per batch row (instead of pixelValues + geometry). Lets a
   * caller encode a batch of prompts' images once and run the language model on equal-length groups of them.
   */
  readonly images?: readonly EncodedImages[];
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

// ---------------------------------------------------------------------------------------------------------------
// The full vision-language interface (every VLM family: llava_onevision, llava_next, qwen2_vl, qwen2_5_vl).
// Code above src/models uses only this; a family's differences are the data in `spec` and its own folder.

/** What the image path gives for ONE prompt's images (views into the batch's outputs; no copies). */
export interface EncodedImages {
  /** image.packed [imageToken, dModel]: this prompt's images in prompt order */
  readonly packed: Tensor<'float32'>;
  /** image tokens per image */
  readonly lengths: readonly number[];
  /** geometry per image, flat: LLaVA (height, width), Qwen (t, h, w) — what M-RoPE / packing need */
  readonly geometry: readonly number[];
  /** the vision-side taps asked for, this prompt's rows only, in the family's layout (see tapInfo(name).layout) */
  readonly taps: ReadonlyMap<string, Tensor>;
  /** rows of each image-path tap per image (tiles for tile taps, patches / tokens for row taps) */
  readonly rows: ReadonlyMap<string, readonly number[]>;
}

/** A view of an image the family's token map has: a grid of image tokens (or of tower patches). */
export interface ViewSpec {
  /** store / token-map view name: "base", "highres", "patches" */
  readonly name: string;
  /** 'sequence': positions are prompt positions; 'tower': positions index the vision taps' token rows */
  readonly positions: 'sequence' | 'tower';
  readonly description: string;
}

/** The vision encoder a family's tower was initialised from (the un-finetuned baseline), or none. */
export type OriginalEncoder =
  | { readonly kind: 'siglip' | 'clip'; readonly modelType: string; readonly example: string }
  | { readonly kind: 'none'; readonly reason: string };

/** A family's differences, as data (in src/models/<family>/spec.ts). */
export interface FamilySpec {
  readonly family: string;
  /** views of every image, in token order (LLaVA-OV: base + highres with newlines; Qwen: its one native grid) */
  readonly views: readonly ViewSpec[];
  /** which view the vision-tower taps (vision.*) are stored on: the base tile or Qwen's patch grid */
  readonly towerView: string;
  /** which view projector.out is stored on */
  readonly projectorView: string;
  /** vision.* tap layout: [tile, token, d] (LLaVA, `clsTokens` leading tokens before the patch grid) or [patch, d] rows */
  readonly visionTapLayout: { readonly kind: 'tiles'; readonly clsTokens: number } | { readonly kind: 'rows' };
  /** projector.out layout: per tile [tile, token, dModel] (LLaVA) or merged image tokens [imageToken, dModel] (Qwen) */
  readonly projectorLayout: 'tiles' | 'rows';
  readonly towers: { readonly vision: 'siglip' | 'clip' | 'qwen-vit'; readonly decoder: 'qwen2' | 'llama' };
  readonly originalEncoder: OriginalEncoder;
  /** prompt format: the built-in chat template used when a checkpoint has none, and the lmms-eval style */
  readonly prompt: { readonly builtinTemplate: string | null; readonly imagePlaceholder: string };
  /** Image-token geometry of the family's native image path, stated where results depend on it (keys on Qwen grids). */
  readonly nativeResolution: 'anyres-tiles' | 'native-grid';
}

/**
 * The vision-language model interface: prepare inputs from image(s) + prompt through the family's own processor and
 * template, batched image encoding, the token map and views as data, every tap of the hook vocabulary the family
 * has (tapInfo says what each is), per-layer key blocking (`block`), cached continuation and greedy generation
 * (KvlensModel).
 */
export interface VisionLanguageModelApi extends KvlensModel {
  readonly spec: FamilySpec;
  readonly tokenizer: TextTokenizer;
  /** Image token id (the placeholder the processor expands). */
  readonly imageTokenId: number;
  /** Every image-path hook the model produces (vision.*, vision.{L}.attn.probs when loaded with them, projector.out). */
  readonly visionHooks: readonly string[];
  /** The prompt text for `nImages` images (one placeholder each), as the family's template renders it. */
  renderPrompt(input: PromptInput, nImages: number): string;
  /** The file the image-processor settings were read from (preprocessor_config.json or processor_config.json). */
  readonly imageProcessorFile: string;
  /** Where the chat template came from: "builtin:<name>" or the checkpoint file it was read from. */
  readonly chatTemplateSource: string;
  /** Text -> ids with the family's tokenizer (no special-token handling beyond the tokenizer's own). */
  encodeText(text: string): number[];
  /** Images + prompt -> model-ready inputs and the token map, via the family's processor. */
  prepare(input: PrepareInput): Promise<PreparedInputs>;
  /** One batched image-path run over every image of `prompts`; per prompt its packed features and vision taps. */
  encodeImages(prompts: readonly PreparedInputs[], taps?: readonly string[]): Promise<EncodedImages[]>;
  /** The request fields carrying a prepared prompt's images (pixelValues + the family's geometry field). */
  imageRequest(p: PreparedInputs): Pick<ModelForwardRequest, 'inputIds' | 'pixelValues' | 'imageSizes' | 'imageGridThw'>;
  /** A forward for its taps only (extraction): no cache, no logits; the decoder stops after the last tapped layer. */
  captureTaps(req: Omit<ModelForwardRequest, 'logitsAt' | 'past'>): Promise<Map<string, Tensor>>;
  /** The views of image `image` of a prepared prompt: grid + positions (sequence views, and the tower view). */
  imageViews(p: PreparedInputs, image?: number): Record<string, ViewTokens>;
  /** What tap `name` is for this model: producer, layout, heads, stored views (src/taps/table.ts); throws on misuse. */
  tapInfo(name: string): ResolvedTap;
}
