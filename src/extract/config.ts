// The one validated value an extraction run is driven by (CLI flags and `kvlens run` experiments both build it).

import { z } from 'zod';
import { DEVICES } from '../runtime/device.js';
import { KvlensUsageError } from '../util/errors.js';

/** Shorthands for the common LM taps; each expands over `layers`. */
export const TAP_SHORTHANDS: Readonly<Record<string, string>> = {
  values: 'attn.v',
  keys: 'attn.k',
  residual: 'resid',
};

/**
 * Default prompt: the model's chat template (with its default system turn), one user turn holding the image and no
 * question text. Image positions only see what precedes them (causal attention), so the question would not change
 * any stored image-token tap; it is kept out so the prompt is the shortest one that places the image in a user turn.
 */
export const DEFAULT_QUESTION = '';

export const ExtractConfigSchema = z.object({
  /** Hugging Face model directory (LLaVA-OneVision). */
  model: z.string().min(1),
  /** Image directory (recursive), a list file (one path per line, relative to the list), or "dataset:<name>:<root>[?k=v&...]". */
  images: z.string().min(1),
  /** Store directory (created, or resumed when it exists with the same settings). */
  out: z.string().min(1),
  /** Tap names, hook patterns (lm.*.attn.v, lm.3-5.resid, image.packed, siglip.*.out) or shorthands values|keys|residual. */
  taps: z.array(z.string().min(1)).min(1).default(['values', 'keys']),
  /** Layer selection applied to the shorthands: "*", "3", "3-5", "0,7,14", "-10:". */
  layers: z.string().min(1).default('*'),
  views: z.array(z.enum(['base', 'highres'])).min(1).default(['base', 'highres']),
  dtype: z.enum(['float16', 'float32']).default('float16'),
  /** User text after the image. */
  question: z.string().default(DEFAULT_QUESTION),
  /** User text before the image, verbatim (include your own separator). */
  prefix: z.string().default(''),
  /**
   * Per-image prefixes: a description of how they were derived (recorded as the store's prompt.perImage, so a store is
   * never resumed under another rule). Every listed image must then carry its own `prefix` (ImageItem.prefix), which
   * replaces `prefix` for that image and is recorded in its store entry. Only through the API (experiments).
   */
  perImagePrefix: z.string().min(1).optional(),
  /** A string adds a system turn; null leaves it out; undefined keeps the template's default. */
  systemPrompt: z.string().nullable().optional(),
  /**
   * A finished prompt (chat template already applied) holding one image placeholder, used verbatim: e.g. a benchmark's
   * own rendering, so that image tokens see exactly the tokens they see there. question, prefix and systemPrompt do
   * not apply then. Only through the API (experiments).
   */
  promptText: z.string().min(1).optional(),
  /** Images per forward pass (the LM runs them batched only when their prompts have equal length). */
  batchSize: z.number().int().positive().default(1),
  /** "i/n"; "auto": SLURM / Kubernetes indexed-job variables (everything when none is set); undefined: everything. */
  shard: z.string().optional(),
  /** How the weights enter the store identity: each safetensors file's header + size (default), or its whole content. */
  weightsHash: z.enum(['header', 'content']).default('header'),
  onError: z.enum(['skip', 'stop']).default('stop'),
  device: z.enum(DEVICES).default('cpu'),
  /** Resize every image to this square size first, so all images give the same token grid and positions. */
  resolution: z.number().int().positive().optional(),
  /**
   * The un-finetuned encoder baseline: a vision tower checkpoint directory (SigLIP, CLIP; its own preprocessor_config.json)
   * for the baseline.* taps (and the old siglip.* names).
   */
  encoderBaseline: z.string().min(1).optional(),
  /** Old name of encoderBaseline (kept as an alias). */
  siglip: z.string().min(1).optional(),
  /** Only the first N images of the list (before sharding). */
  limit: z.number().int().positive().optional(),
  maxShardBytes: z.number().int().positive().optional(),
  maxImagesPerShard: z.number().int().positive().optional(),
}).strict();

export type ExtractConfig = z.infer<typeof ExtractConfigSchema>;
export type ExtractConfigInput = z.input<typeof ExtractConfigSchema>;

export function parseExtractConfig(input: unknown): ExtractConfig {
  const r = ExtractConfigSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new KvlensUsageError(`extract config field "${issue.path.join('.') || '(root)'}": ${issue.message}`);
  }
  if (r.data.promptText !== undefined && (r.data.question !== DEFAULT_QUESTION || r.data.prefix !== '' || r.data.systemPrompt !== undefined || r.data.perImagePrefix !== undefined)) {
    throw new KvlensUsageError('extract config field "promptText" is a finished prompt: question, prefix, perImagePrefix and systemPrompt do not apply to it');
  }
  if (r.data.siglip !== undefined && r.data.encoderBaseline !== undefined && r.data.siglip !== r.data.encoderBaseline) {
    throw new KvlensUsageError('extract config fields "encoderBaseline" and "siglip" (its old name) name different directories; give one');
  }
  return r.data;
}

/** The encoder-baseline tower directory of a run (encoderBaseline, or its old name siglip). */
export function baselineDir(cfg: Pick<ExtractConfig, 'encoderBaseline' | 'siglip'>): string | undefined {
  return cfg.encoderBaseline ?? cfg.siglip;
}

/** Replace shorthands by layered hook patterns: values -> lm.{layers}.attn.v. */
export function tapPatterns(cfg: Pick<ExtractConfig, 'taps' | 'layers'>): string[] {
  return cfg.taps.map((t) => (TAP_SHORTHANDS[t] ? `lm.${cfg.layers}.${TAP_SHORTHANDS[t]}` : t));
}
