// Text-query vectors for the zero-shot text probes (ImageNet-S class names, RefCOCO referring expressions): the
// representation of a text at the SAME tap (layer, kind) as the stored image tokens, read at the text's final token.
//
// Where the text goes (paper-protocols §4.3 leaves "standalone or after the image" open): the text is run WITHOUT the
// image, in place of it. The prompt is the store's recorded template up to the image placeholder (system turn, user
// turn opening, any prefix), then the text. So the text sees exactly the context the image tokens saw, and its vector
// is a pure class / expression embedding, independent of the image it is scored against (one forward per distinct
// text, not one per (text, image)). Causal attention means nothing after the text's final token could change it.
//
// Vectors are flattened like the store flattens grids (D = heads x headDim, head-major) and cached on disk in one
// safetensors file keyed by model config hash + prompt context, so a rerun computes only texts it has not seen.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadModel } from '../models/index.js';
import { gatherGrid, modelConfigSha256, tapLayout, type StoreIdentity } from '../store/index.js';
import { parseHook } from '../taps/names.js';
import { readAllTensors, readSafetensorsHeader, writeSafetensors } from '../tensor/safetensors.js';
import { f32, type Tensor } from '../tensor/tensor.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { ensureDir } from '../util/dirs.js';

/** Per tap, per text: the query vector [D]. */
export type TextVectors = Map<string, Map<string, Float32Array>>;

/** Supplies the vectors of `texts` at every tap of `taps` (the model-backed one below, or a test's planted one). */
export type TextQueryProvider = (texts: readonly string[], taps: readonly string[]) => Promise<TextVectors>;

/** Image placeholders kvlens prompts can hold, checked in this order (Qwen2-VL's span opens with vision_start). */
const IMAGE_PLACEHOLDERS = ['<|vision_start|>', '<image>'];

/** The store prompt's text before its image placeholder: the context the text query is run in. */
export function textQueryContext(template: string): string {
  for (const p of IMAGE_PLACEHOLDERS) {
    const at = template.indexOf(p);
    if (at >= 0) return template.slice(0, at);
  }
  throw new KvlensInputError(`the store's prompt template has no image placeholder (${IMAGE_PLACEHOLDERS.join(' or ')}): ${JSON.stringify(template)}`, 'manifest.json prompt.template');
}

/** What the protocol object records about the text queries. */
export function textQueryProtocol(context: string): Record<string, unknown> {
  return {
    textQuery: 'representation of the text at the same tap as the image tokens, at the text\'s final token (value tap: concat over KV heads)',
    textPlacement: 'standalone, in place of the image: the store\'s prompt template up to the image placeholder, then the text; no image in the sequence',
    textContext: context,
  };
}

export interface ModelTextQueryOptions {
  /** Model directory; default: the path the store recorded. Its config.json must hash to the store's. */
  readonly modelDir?: string;
  /** Cache file (e.g. <out>/text-queries.safetensors); none: always recompute. */
  readonly cachePath?: string;
  /** Called once per text actually run through the model (progress, tests). */
  readonly onCompute?: (text: string) => void;
}

const CACHE_KIND = 'kvlens-text-queries/1';

function textKey(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 20);
}

/** Vectors already cached for this model + context (an unreadable or foreign cache is ignored and later replaced). */
function readCache(path: string, modelSha: string, context: string): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  if (!existsSync(path)) return out;
  try {
    const meta = readSafetensorsHeader(path).metadata;
    if (meta.kind !== CACHE_KIND || meta.modelConfigSha256 !== modelSha || meta.context !== context) return out;
    for (const [name, t] of readAllTensors(path)) out.set(name, Float32Array.from(t.data as Float32Array));
  } catch {
    out.clear();
  }
  return out;
}

function cacheName(tap: string, text: string): string {
  return `${tap}|${textKey(text)}`;
}

/**
 * The text-query provider backed by the store's model: refuses a model directory whose config differs from the one
 * the store was extracted with, loads the model only when some (text, tap) is not cached, and rewrites the cache.
 */
export function modelTextQueries(identity: StoreIdentity, opts: ModelTextQueryOptions = {}): TextQueryProvider {
  const modelDir = resolve(opts.modelDir ?? identity.model.path);
  const context = textQueryContext(identity.prompt.template);
  return async (texts, taps) => {
    for (const tap of taps) {
      if (!parseHook(tap).kind.startsWith('lm.')) throw new KvlensUsageError(`tap "${tap}": text queries exist only for language-model taps (lm.*)`);
    }
    const sha = modelConfigSha256(modelDir);
    if (sha !== identity.model.configSha256) {
      throw new KvlensInputError(`config.json hashes to ${sha.slice(0, 12)}…, the store was extracted with ${identity.model.configSha256.slice(0, 12)}… (${identity.model.path}); text queries must come from the same model`, modelDir);
    }
    const cached = opts.cachePath ? readCache(opts.cachePath, sha, context) : new Map<string, Float32Array>();
    const unique = [...new Set(texts)];
    const todo = unique.filter((t) => taps.some((tap) => !cached.has(cacheName(tap, t))));
    if (todo.length) {
      const computed = await computeTextVectors(modelDir, context, todo, taps, opts.onCompute);
      for (const [name, v] of computed) cached.set(name, v);
      if (opts.cachePath) {
        ensureDir(dirname(opts.cachePath));
        const tensors: Record<string, Tensor> = {};
        for (const [name, v] of cached) tensors[name] = f32([v.length], v);
        writeSafetensors(opts.cachePath, tensors, { kind: CACHE_KIND, modelConfigSha256: sha, context });
      }
    }
    const out: TextVectors = new Map();
    for (const tap of taps) out.set(tap, new Map(unique.map((t) => [t, cached.get(cacheName(tap, t))!])));
    return out;
  };
}

/** One forward per text (texts differ in length; no padding effects): the final token's vector at every tap. */
async function computeTextVectors(modelDir: string, context: string, texts: readonly string[], taps: readonly string[], onCompute?: (t: string) => void): Promise<Map<string, Float32Array>> {
  const tokenizer = await TextTokenizer.fromPretrained(modelDir);
  const contextIds = tokenizer.encode(context);
  const model = await loadModel(modelDir);
  const out = new Map<string, Float32Array>();
  try {
    for (const text of texts) {
      if (text.trim() === '') throw new KvlensInputError('a text query is empty', 'text queries');
      const ids = tokenizer.encode(context + text);
      if (ids.length <= contextIds.length) throw new KvlensInputError(`text ${JSON.stringify(text)} adds no token after the prompt context`, 'text queries');
      const res = await model.forward({ inputIds: [ids], taps: [...taps], logitsAt: 'none' });
      const last = ids.length - 1;
      for (const tap of taps) {
        const t = res.taps.get(tap)!;
        const tensor = { shape: t.shape, data: t.data as Float32Array }; // [1, kvHead, pos, dHead] or [1, pos, D]
        out.set(cacheName(tap, text), gatherGrid(tensor, tapLayout(tap, tensor), { rows: 1, cols: 1, positions: [last] })); // [D]
      }
      onCompute?.(text);
    }
  } finally {
    await model.dispose();
  }
  return out;
}
