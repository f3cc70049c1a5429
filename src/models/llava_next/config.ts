// LLaVA-NeXT configuration (HF `LlavaNextConfig`, model_type "llava_next"): a CLIP tower, a 2-layer projector,
// anyres tiling WITHOUT anyres_max downsampling, and a Llama (or other decoder) text model parsed by its adapter.
// Omitted fields get the transformers 4.46 defaults (save_pretrained drops default-valued nested fields).

import { z } from 'zod';
import { parseClipVisionConfig, type ClipVisionConfig } from '../clip/config.js';
import { featureLayerList, modelTypeGiven, nestedTextConfig, parseHfConfig, pinpointSchema, withAttributeMap } from '../hf-config.js';

export const LLAVA_NEXT_MODEL_TYPE = 'llava_next';

/** transformers' default pinpoints (llava-v1.6 at 336 px tiles). */
export const LLAVA_NEXT_DEFAULT_PINPOINTS: ReadonlyArray<readonly [number, number]> = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]];

/** The tower LlavaNextConfig builds when vision_config is absent (CLIP ViT-L/14 at 336 px). */
const DEFAULT_VISION = {
  model_type: 'clip_vision_model', intermediate_size: 4096, hidden_size: 1024, patch_size: 14, image_size: 336,
  num_hidden_layers: 24, num_attention_heads: 16, projection_dim: 768,
};

const llavaNextSchema = z.object({
  model_type: z.literal(LLAVA_NEXT_MODEL_TYPE),
  image_token_index: z.number().int().nonnegative().default(32000),
  projector_hidden_act: z.enum(['gelu']).default('gelu'),
  multimodal_projector_bias: z.boolean().default(true),
  // "full" keeps CLS, which pack_image_features of LLaVA-NeXT rejects (token count != grid); only "default" works.
  vision_feature_select_strategy: z.literal('default').default('default'),
  vision_feature_layer: z.union([z.number().int(), z.array(z.number().int()).min(1)]).default(-2),
  image_grid_pinpoints: z.array(pinpointSchema).min(1).default(LLAVA_NEXT_DEFAULT_PINPOINTS.map((p) => [p[0], p[1]] as [number, number])),
  tie_word_embeddings: z.boolean().default(false),
  vision_config: z.record(z.string(), z.unknown()).optional(),
  text_config: z.record(z.string(), z.unknown()).optional(),
}).passthrough();

export interface LlavaNextConfig {
  readonly imageTokenIndex: number;
  readonly projectorBias: boolean;
  /** HF hidden_states indices (negative from the end); several are concatenated on the feature axis. */
  readonly featureLayers: readonly number[];
  readonly pinpoints: ReadonlyArray<readonly [number, number]>;
  readonly tieWordEmbeddings: boolean;
  readonly vision: ClipVisionConfig;
  /** Raw text_config with model_type (defaults not applied): parsed by the text model's adapter. */
  readonly textConfigRaw: Record<string, unknown>;
}

export function parseLlavaNextConfig(raw: unknown, where = 'config.json'): LlavaNextConfig {
  const c = parseHfConfig(llavaNextSchema, withAttributeMap(raw, { image_token_id: 'image_token_index' }), where, (field) => {
    if (field === 'model_type') return `${modelTypeGiven(raw)}, expected "${LLAVA_NEXT_MODEL_TYPE}"`;
    if (field === 'vision_feature_select_strategy') return 'field "vision_feature_select_strategy": only "default" (CLS dropped) is supported by LLaVA-NeXT feature packing';
    return undefined;
  });
  const vision = parseClipVisionConfig({ ...DEFAULT_VISION, ...(c.vision_config ?? {}) }, `${where} (vision_config)`);
  const textConfigRaw = nestedTextConfig(c.text_config, 'llama', c.tie_word_embeddings);
  const featureLayers = featureLayerList(c.vision_feature_layer, vision.num_hidden_layers, where);
  return {
    imageTokenIndex: c.image_token_index,
    projectorBias: c.multimodal_projector_bias,
    featureLayers,
    pinpoints: c.image_grid_pinpoints,
    tieWordEmbeddings: c.tie_word_embeddings,
    vision,
    textConfigRaw,
  };
}
