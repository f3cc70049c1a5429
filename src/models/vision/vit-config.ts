// The ViT tower configs CLIP and SigLIP share (HF CLIPVisionConfig / SiglipVisionConfig): the same fields with
// different defaults and activations, the same derived sizes. Each family passes its defaults as data.

import { z } from 'zod';
import { KvlensInputError } from '../../util/errors.js';
import { modelTypeGiven, parseHfConfig, posInt } from '../hf-config.js';

export interface VitDefaults {
  readonly patchSize: number;
  readonly layerNormEps: number;
  /** Accepted hidden_act values; the first is the config class's default. */
  readonly acts: readonly [string, ...string[]];
}

/** A tower schema with the transformers defaults; `extra` adds a family's own fields (e.g. SigLIP's head flag). */
export function vitTowerSchema<M extends string, A extends string, E extends z.ZodRawShape>(
  modelType: M, d: VitDefaults & { readonly acts: readonly [A, ...A[]] }, extra: E,
) {
  return z.object({
    model_type: z.literal(modelType).default(modelType),
    hidden_size: posInt.default(768),
    intermediate_size: posInt.default(3072),
    num_hidden_layers: posInt.default(12),
    num_attention_heads: posInt.default(12),
    num_channels: posInt.default(3),
    image_size: posInt.default(224),
    patch_size: posInt.default(d.patchSize),
    layer_norm_eps: z.number().positive().default(d.layerNormEps),
    hidden_act: z.enum(d.acts as readonly [A, ...A[]]).default(d.acts[0]),
    ...extra,
  }).passthrough();
}

/** Parse a tower config (a whole CLIPConfig / SiglipConfig nests it under vision_config; pass that object). */
export function parseVitConfig<S extends z.ZodType>(schema: S, modelType: string, raw: unknown, where: string): z.output<S> {
  return parseHfConfig(schema, raw ?? {}, where, (field) =>
    (field === 'model_type' ? `${modelTypeGiven(raw)}; supported vision towers: "${modelType}"` : undefined));
}

/** Sizes derived from a tower config. */
export interface VitDims {
  readonly dModel: number;
  readonly heads: number;
  readonly dHead: number;
  readonly layers: number;
  readonly patchesPerSide: number;
}

export function vitDims(c: { hidden_size: number; num_attention_heads: number; num_hidden_layers: number; image_size: number; patch_size: number }, where: string): VitDims {
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new KvlensInputError(`hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`, where);
  }
  return {
    dModel: c.hidden_size,
    heads: c.num_attention_heads,
    dHead: c.hidden_size / c.num_attention_heads,
    layers: c.num_hidden_layers,
    // The stride-patch convolution floors, exactly as torch's Conv2d and HF's image_size // patch_size.
    patchesPerSide: Math.floor(c.image_size / c.patch_size),
  };
}
