// What every Hugging Face config adapter shares. A family's zod schema carries the transformers defaults as data
// (save_pretrained drops default-valued fields, nested ones included); this module turns a failed parse into a
// KvlensInputError naming the file and the field, reads config.json naming the file on failure, and holds the
// LLaVA-style conventions (vision_feature_layer indexing hidden_states, text_config inheriting the tie flag).

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { describeValue, KvlensInputError } from '../util/errors.js';

export const posInt = z.number().int().positive();

/** A (height, width) resolution of image_grid_pinpoints. */
export const pinpointSchema = z.tuple([posInt, posInt]);

/** config.json (or any JSON config) as a value; a missing or malformed file names the path. */
export function readConfigJson(path: string, failure = 'cannot read'): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new KvlensInputError(`${failure} (${(e as Error).message})`, path);
  }
}

/** The error for a zod failure: its first issue, as `field "a.b": message`. */
export function zodFieldError(err: z.ZodError, where: string): KvlensInputError {
  const issue = err.issues[0];
  if (issue.path.length === 0) return new KvlensInputError(`expected a JSON object of config fields (${issue.message})`, where);
  return new KvlensInputError(`field "${issue.path.map(String).join('.')}": ${issue.message}`, where);
}

/**
 * Parse `raw` with a family's schema. `explain` may give a more actionable message for a failing field (e.g. an
 * unsupported model_type); otherwise the first issue is reported with its field path.
 */
export function parseHfConfig<S extends z.ZodType>(schema: S, raw: unknown, where: string, explain?: (field: string) => string | undefined): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const special = explain?.(r.error.issues[0].path.map(String).join('.'));
  throw special === undefined ? zodFieldError(r.error, where) : new KvlensInputError(special, where);
}

/**
 * A config class's attribute_map: alias -> the name it saves. transformers reads a config.json that spells a
 * field by its alias (LlavaConfig: image_token_id for image_token_index); the saved name wins when both appear.
 */
export function withAttributeMap(raw: unknown, map: Readonly<Record<string, string>>): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const out: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  for (const [alias, name] of Object.entries(map)) if (out[name] === undefined && out[alias] !== undefined) out[name] = out[alias];
  return out;
}

/** `field "model_type" is "x"` (the value as given, for errors about an unsupported family). */
export function modelTypeGiven(raw: unknown): string {
  const type = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).model_type : undefined;
  return `field "model_type" is ${describeValue(type)}`;
}

/**
 * vision_feature_layer as a list (one index or several, concatenated on the feature axis), each checked against
 * the tower: HF hidden_states has layers + 1 entries (0 = embeddings), negative indices count from the end.
 */
export function featureLayerList(value: number | readonly number[], towerLayers: number, where: string): number[] {
  const layers = typeof value === 'number' ? [value] : [...value];
  const nHidden = towerLayers + 1;
  for (const l of layers) {
    if (l < -nHidden || l >= nHidden) {
      throw new KvlensInputError(`field "vision_feature_layer": ${l} is out of range for a ${towerLayers}-layer tower (hidden_states has ${nHidden} entries)`, where);
    }
  }
  return layers;
}

/** Map an HF hidden_states index (may be negative) into [embeddings, layer 0 out, layer 1 out, ...]. */
export function hiddenStateIndex(layer: number, visionLayers: number): number {
  return layer < 0 ? visionLayers + 1 + layer : layer;
}

/**
 * A composite model's raw text_config, defaults not applied (the text model's adapter does that), with its
 * model_type defaulted and the top-level tie flag inherited: the top-level flag governs the LM head of the
 * *ForConditionalGeneration classes.
 */
export function nestedTextConfig(textConfig: Record<string, unknown> | undefined, defaultModelType: string, tieWordEmbeddings: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { model_type: defaultModelType, ...(textConfig ?? {}) };
  if (out.tie_word_embeddings === undefined) out.tie_word_embeddings = tieWordEmbeddings;
  return out;
}
