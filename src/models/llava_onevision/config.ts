// LLaVA-OneVision configuration (HF `LlavaOnevisionConfig`, model_type "llava_onevision").
// The vision part is a SigLIP tower config; the text part is handed to the language-model config parser.
// Omitted fields get the transformers defaults (save_pretrained drops default-valued nested fields).

import { z } from 'zod';
import { featureLayerList, modelTypeGiven, nestedTextConfig, parseHfConfig, pinpointSchema, withAttributeMap } from '../hf-config.js';
import { parseSiglipVisionConfig, type SiglipVisionConfig } from '../siglip/config.js';

export const LLAVA_ONEVISION_MODEL_TYPE = 'llava_onevision';

/** transformers' default pinpoints: every (h, w) with h, w in 384 * {1..6}. */
export const DEFAULT_PINPOINTS: ReadonlyArray<readonly [number, number]> = (() => {
  const out: [number, number][] = [];
  for (let i = 1; i <= 6; i++) for (let j = 1; j <= 6; j++) out.push([384 * i, 384 * j]);
  return out;
})();

/** The vision tower LlavaOnevisionConfig builds when vision_config is absent (SigLIP so400m, no head). */
const DEFAULT_VISION = {
  model_type: 'siglip_vision_model', hidden_size: 1152, intermediate_size: 4304, patch_size: 14, image_size: 384,
  num_hidden_layers: 26, num_attention_heads: 16, vision_use_head: false,
};

const llavaOnevisionSchema = z.object({
  model_type: z.literal(LLAVA_ONEVISION_MODEL_TYPE),
  image_token_index: z.number().int().nonnegative().default(151646),
  video_token_index: z.number().int().nonnegative().default(151647),
  projector_hidden_act: z.enum(['gelu']).default('gelu'),
  multimodal_projector_bias: z.boolean().default(true),
  vision_feature_select_strategy: z.enum(['default', 'full']).default('full'),
  vision_feature_layer: z.union([z.number().int(), z.array(z.number().int()).min(1)]).default(-1),
  vision_aspect_ratio: z.string().regex(/^anyres_max_\d+$/, 'expected "anyres_max_<N>"').default('anyres_max_9'),
  image_grid_pinpoints: z.array(pinpointSchema).min(1).default(DEFAULT_PINPOINTS.map((p) => [p[0], p[1]] as [number, number])),
  tie_word_embeddings: z.boolean().default(false),
  vision_config: z.record(z.string(), z.unknown()).optional(),
  text_config: z.record(z.string(), z.unknown()).optional(),
}).passthrough();

export interface LlavaOnevisionConfig {
  readonly imageTokenIndex: number;
  readonly videoTokenIndex: number;
  readonly projectorBias: boolean;
  readonly selectStrategy: 'default' | 'full';
  /** HF hidden_states indices (0 = embeddings, negative counts from the end); several are concatenated on the feature axis. */
  readonly featureLayers: readonly number[];
  /** N of anyres_max_N: the grid is downsampled when it exceeds about N tiles' worth of tokens. */
  readonly anyresMaxTiles: number;
  /** Candidate (height, width) resolutions in pixels. */
  readonly pinpoints: ReadonlyArray<readonly [number, number]>;
  readonly tieWordEmbeddings: boolean;
  readonly vision: SiglipVisionConfig;
  /** Raw text_config (defaults not yet applied): parsed by the language model's own config parser. */
  readonly textConfigRaw: Record<string, unknown>;
}

export function parseLlavaOnevisionConfig(raw: unknown, where = 'config.json'): LlavaOnevisionConfig {
  const c = parseHfConfig(llavaOnevisionSchema, withAttributeMap(raw, { image_token_id: 'image_token_index', video_token_id: 'video_token_index' }), where, (field) =>
    (field === 'model_type' ? `${modelTypeGiven(raw)}, expected "${LLAVA_ONEVISION_MODEL_TYPE}"` : undefined));
  const vision = parseSiglipVisionConfig({ ...DEFAULT_VISION, ...(c.vision_config ?? {}) }, `${where} (vision_config)`);
  const textConfigRaw = nestedTextConfig(c.text_config, 'qwen2', c.tie_word_embeddings);
  const featureLayers = featureLayerList(c.vision_feature_layer, vision.num_hidden_layers, where);
  return {
    imageTokenIndex: c.image_token_index,
    videoTokenIndex: c.video_token_index,
    projectorBias: c.multimodal_projector_bias,
    selectStrategy: c.vision_feature_select_strategy,
    featureLayers,
    anyresMaxTiles: Number(c.vision_aspect_ratio.slice('anyres_max_'.length)),
    pinpoints: c.image_grid_pinpoints,
    tieWordEmbeddings: c.tie_word_embeddings,
    vision,
    textConfigRaw,
  };
}
