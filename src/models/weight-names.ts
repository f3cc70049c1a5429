// Weight-name layouts, as data. transformers renamed the modules of its VLM classes in 4.52 and loads older
// checkpoints through a per-class `_checkpoint_conversion_mapping` (in v5: WeightRenaming rules built from the
// same table): each checkpoint key is matched against the patterns in order and the first that matches rewrites
// it. kvlens applies the same rules on both sides of a lookup — to every tensor name in the checkpoint and to
// every name the graph builders ask for — so a checkpoint in any layout transformers loads resolves to the same
// tensors, and the builders keep asking for the names they always used.
//
//   legacy (transformers <= 4.51)          current (4.52 ... v5)
//   LLaVA-NeXT / LLaVA-OneVision:
//     language_model.model.*               model.language_model.*
//     language_model.lm_head.weight        lm_head.weight
//     vision_tower.*                       model.vision_tower.*
//     multi_modal_projector.*              model.multi_modal_projector.*
//     image_newline                        model.image_newline
//   Qwen2-VL / Qwen2.5-VL:
//     model.{embed_tokens,layers,norm}.*   model.language_model.*
//     visual.*                             model.visual.*
//     lm_head.weight                       lm_head.weight

import { WeightSet, type WeightKeyMapping } from '../tensor/safetensors.js';
import { ownValue } from '../util/errors.js';

/** One rename: the first rule whose pattern matches a key rewrites it (re.subn in transformers). */
export interface WeightRenaming {
  readonly pattern: RegExp;
  readonly replacement: string;
}

/** LlavaForConditionalGeneration-style classes (LlavaNext, LlavaOnevision, ...) since transformers 4.52. */
const LLAVA_RENAMINGS: readonly WeightRenaming[] = [
  { pattern: /^language_model\.model/, replacement: 'model.language_model' },
  { pattern: /^vision_tower/, replacement: 'model.vision_tower' },
  { pattern: /^multi_modal_projector/, replacement: 'model.multi_modal_projector' },
  { pattern: /^image_newline/, replacement: 'model.image_newline' },
  { pattern: /^language_model\.lm_head/, replacement: 'lm_head' },
];

/** Qwen2VLForConditionalGeneration / Qwen2_5_VLForConditionalGeneration since transformers 4.52. */
const QWEN_VL_RENAMINGS: readonly WeightRenaming[] = [
  { pattern: /^visual/, replacement: 'model.visual' },
  { pattern: /^model(?!\.(language_model|visual))/, replacement: 'model.language_model' },
];

/** Renamings per config.json model_type; a family absent here (qwen2, llama, siglip) has one layout. */
export const WEIGHT_RENAMINGS: Readonly<Record<string, readonly WeightRenaming[]>> = {
  llava_next: LLAVA_RENAMINGS,
  llava_onevision: LLAVA_RENAMINGS,
  qwen2_vl: QWEN_VL_RENAMINGS,
  qwen2_5_vl: QWEN_VL_RENAMINGS,
};

/** A key in the current layout: the first matching rule applied, or the key itself. */
export function currentWeightName(rules: readonly WeightRenaming[], key: string): string {
  for (const r of rules) if (r.pattern.test(key)) return key.replace(r.pattern, r.replacement);
  return key;
}

/** The key mapping of a model_type (identity for single-layout families). */
export function weightKeyMapping(modelType: string): WeightKeyMapping | undefined {
  const rules = ownValue(WEIGHT_RENAMINGS, modelType);
  return rules?.length ? (key) => currentWeightName(rules, key) : undefined;
}

/** Open a checkpoint's weights (single file or sharded index) with its family's layouts resolved. */
export function openModelWeights(dir: string, modelType: string): WeightSet {
  return WeightSet.open(dir, { keyMapping: weightKeyMapping(modelType) });
}
