// evaluateBenchmark: POPE / MME / BLINK with and without attention blocking, prefilling each image ONCE.
//
// Per item the prompt is rendered (lmms-eval format) and split after the last image placeholder. The prefix —
// system turn, user role, the image(s) — is prefilled once per image and kept as an immutable KV cache; every
// question on that image and every condition continues on it with its own suffix and greedy-decodes. Blocking acts
// only on queries AFTER the image (the suffix and the generated tokens) against chosen image keys, so the prefix is
// the same under every condition and one cache serves them all. (In a multi-image prompt, the text between images,
// e.g. BLINK's separating spaces, belongs to the shared prefix and is never blocked.)
//
//   const r = await evaluateBenchmark({ model /* loadVisionModel */, samples: iterateDataset('pope', root), conditions: [{ name: 'none' }],
//                                       outputsPath: 'run/results/outputs/pope.jsonl' });
//
// Raw outputs go to JSONL as they are produced; only O(images) counters stay in memory.
//
// imageMajor (POPE, whose three splits ask about the same COCO images): the item list (questions and image paths, no
// pixels) is read first and answered image by image, so each image is prefilled once for every split however far apart
// its questions are; outputs and metrics come out exactly as an in-order run gives them. The same question on the same
// prefix under the same condition (POPE's "yes" questions recur in every split) is decoded once and its answer reused.

import { argmaxRows, span, type KvCache } from '../models/lm/index.js';
import type { VisionLanguageModelApi } from '../models/types.js';
import type { TokenMap } from '../preprocess/token-map.js';
import type { AnySample } from '../data/types.js';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { blockSpecsFor, type KeyBlock } from './blocks.js';
import { blockedGridPositions, blockedLayers, resolveBlocks, validateConditions, type EvalCondition } from './conditions.js';
import { JsonlWriter, OrderedJsonlWriter } from './jsonl.js';
import type { BlinkMetrics, MmeMetrics, PopeSplitMetrics } from './metrics.js';
import { BLINK_PARSER_NAME, MME_PARSER_NAME, type PopeParserName } from './parsers.js';
import { lmmsEvalFormat, type PromptFormat } from './prompts.js';
import { BenchmarkScorer, LMMS_MAX_NEW_TOKENS, toEvalItems, type BenchmarkName, type EvalItem, type TaskPromptOptions } from './tasks.js';

/** What the harness uses of a vision-language model (loadVisionModel): its processor, forward, cached continuation. */
export type EvalModel = Pick<VisionLanguageModelApi, 'family' | 'dims' | 'eosTokenIds' | 'tokenizer' | 'prepare' | 'imageRequest' | 'forward' | 'continue'>;

export interface EvaluateOptions {
  readonly model: EvalModel;
  /** Dataset samples (iterateDataset('pope' | 'mme' | 'blink', root)) or ready EvalItems; consumed lazily. */
  readonly samples: AsyncIterable<AnySample | EvalItem> | Iterable<AnySample | EvalItem>;
  readonly conditions: readonly EvalCondition[];
  /** Default: the model family's lmms-eval format (lmmsEvalFormat(model.family), e.g. llava_onevision/qwen_1_5). */
  readonly format?: PromptFormat;
  readonly taskPrompts?: TaskPromptOptions;
  /** One number for every benchmark, or per benchmark; default lmms-eval's (POPE 128, MME 16, BLINK 1024). */
  readonly maxNewTokens?: number | Partial<Record<BenchmarkName, number>>;
  /** Only greedy decoding is implemented (lmms-eval's POPE/MME setting; pinned for BLINK too). */
  readonly greedy?: boolean;
  /** Stop ids; default the model's eos ids. */
  readonly eos?: readonly number[];
  /** Raw outputs, one JSON object per (item, condition); written as they come, moved into place at the end. */
  readonly outputsPath?: string;
  /** Prefilled prefixes kept at once (least recently used dropped); 1 suffices when an image's items are adjacent. */
  readonly prefixCacheSize?: number;
  /**
   * Read every item first and answer them grouped by image (first appearance order), so an image whose questions are
   * far apart in the input (POPE's splits) is prefilled once; outputs and metrics are those of the input order. Holds
   * the item list in memory: meant for items whose images are paths (POPE), not embedded bytes.
   */
  readonly imageMajor?: boolean;
  readonly onItem?: (done: number, item: EvalItem) => void;
}

export interface ConditionResult {
  readonly name: string;
  readonly blockedLayers: number[];
  readonly blockedPositions?: number;
  /** POPE per split under each parser (both are always computed; pick one by name for benchmarks.json). */
  readonly pope?: Record<PopeParserName, PopeSplitMetrics[]>;
  readonly mme?: MmeMetrics & { parser: string };
  readonly blink?: BlinkMetrics & { parser: string };
}

export interface EvaluateResult {
  readonly format: string;
  readonly conditions: ConditionResult[];
  /** Items evaluated (each under every condition). */
  readonly items: number;
  /** Prefix prefills (vision + LM over the image prefix): at most one per image while it stays cached. */
  readonly prefills: number;
  /** (item, condition) answers taken from an identical earlier question on the same cached prefix instead of decoded. */
  readonly reusedAnswers?: number;
  /** One rendered prompt per benchmark (the first item's), for the manifest's `prompts`. */
  readonly prompts: Partial<Record<BenchmarkName, string>>;
}

interface PrefixEntry {
  readonly key: string;
  readonly cache: KvCache;
  /** Raw (unexpanded) prompt-prefix ids, to check the suffix tokenizes on its own. */
  readonly rawIds: readonly number[];
  readonly tokenMap: TokenMap;
  readonly imageTokens: number;
  readonly blocks: Map<string, KeyBlock[]>;
  /** condition + suffix ids -> the greedy answer: the same inputs decode to the same tokens, so each is decoded once. */
  readonly answers: Map<string, number[]>;
}

function maxTokensFor(o: EvaluateOptions['maxNewTokens'], b: BenchmarkName): number {
  const n = typeof o === 'number' ? o : o?.[b] ?? LMMS_MAX_NEW_TOKENS[b];
  if (!Number.isInteger(n) || n < 1) throw new KvlensUsageError(`maxNewTokens for ${b} must be a positive integer, got ${n}`);
  return n;
}

export async function evaluateBenchmark(o: EvaluateOptions): Promise<EvaluateResult> {
  if (o.greedy === false) throw new KvlensUsageError('evaluateBenchmark: only greedy decoding is implemented (greedy: true)');
  validateConditions(o.conditions, o.model.dims.lmLayers);
  const format = o.format ?? lmmsEvalFormat(o.model.family);
  const capacity = o.prefixCacheSize ?? 2;
  if (!Number.isInteger(capacity) || capacity < 1) throw new KvlensUsageError(`prefixCacheSize must be a positive integer, got ${capacity}`);
  const eos = new Set(o.eos ?? o.model.eosTokenIds);
  const tok = o.model.tokenizer;
  const scorers = new Map(o.conditions.map((c) => [c.name, new BenchmarkScorer()]));
  const prefixes = new Map<string, PrefixEntry>(); // insertion order = recency
  const prompts: Partial<Record<BenchmarkName, string>> = {};
  const plain = o.outputsPath && !o.imageMajor ? await JsonlWriter.create(o.outputsPath) : undefined;
  const ordered = o.outputsPath && o.imageMajor ? await OrderedJsonlWriter.create(o.outputsPath) : undefined;
  const writer = plain ?? ordered;
  const write = (seq: number, record: unknown) => (ordered ? ordered.write(seq, record) : plain?.write(record));
  let items = 0, prefills = 0, reusedAnswers = 0;

  // Items with their input position: as they come, or (imageMajor) all read, declared to the scorers in input order,
  // then grouped by image.
  async function* sequence(): AsyncGenerator<[number, EvalItem]> {
    let seq = 0;
    if (!o.imageMajor) {
      for await (const item of toEvalItems(o.samples, o.taskPrompts)) yield [seq++, item];
      return;
    }
    const byImage = new Map<string, [number, EvalItem][]>();
    for await (const item of toEvalItems(o.samples, o.taskPrompts)) {
      for (const s of scorers.values()) s.declare(item);
      const group = byImage.get(item.imageKey) ?? byImage.set(item.imageKey, []).get(item.imageKey)!;
      group.push([seq++, item]);
    }
    for (const group of byImage.values()) yield* group;
  }

  const prefixFor = async (item: EvalItem, prefixText: string): Promise<PrefixEntry> => {
    const key = `${item.imageKey}\u0000${prefixText}`;
    const hit = prefixes.get(key);
    if (hit) {
      prefixes.delete(key);
      prefixes.set(key, hit);
      return hit;
    }
    const prepared = await o.model.prepare({ images: item.images, text: prefixText });
    const out = await o.model.forward({ ...o.model.imageRequest(prepared), logitsAt: 'none' });
    prefills++;
    const entry: PrefixEntry = {
      key, cache: out.cache, rawIds: tok.encode(prefixText), tokenMap: prepared.tokenMap,
      imageTokens: prepared.tokenMap.runs.reduce((a, r) => a + r.end - r.start, 0),
      blocks: new Map(o.conditions.map((c) => [c.name, resolveFor(c, prepared.tokenMap, item)])),
      answers: new Map(),
    };
    prefixes.set(key, entry);
    while (prefixes.size > capacity) prefixes.delete(prefixes.keys().next().value!);
    return entry;
  };

  // a condition that cannot block this image (e.g. a high-res grid shape the key variance has no group for) names it
  const resolveFor = (c: EvalCondition, map: Parameters<typeof resolveBlocks>[1], item: { benchmark: string; id: string; imageKey?: string }) => {
    try {
      return resolveBlocks(c, map, o.model.dims.lmLayers);
    } catch (e) {
      if (e instanceof KvlensInputError) throw new KvlensInputError(`condition "${c.name}": ${e.message}`, `${item.benchmark} ${item.id}${item.imageKey ? ` (image ${item.imageKey})` : ''}`);
      throw e;
    }
  };

  try {
    for await (const [seq, item] of sequence()) {
      if (item.images.length === 0) throw new KvlensInputError('has no image; the benchmark runner prefills an image prefix', `${item.benchmark} ${item.id}`);
      const rendered = format.render(item.context, item.images.length);
      prompts[item.benchmark] ??= rendered.prefix + rendered.suffix;
      const prefix = await prefixFor(item, rendered.prefix);
      const suffixIds = suffixTokens(tok, prefix.rawIds, rendered.prefix + rendered.suffix, item);
      const maxNew = maxTokensFor(o.maxNewTokens, item.benchmark);
      for (const condition of o.conditions) {
        const memo = `${condition.name}\u0000${maxNew}\u0000${suffixIds.join(',')}`;
        let tokens = prefix.answers.get(memo);
        if (tokens) reusedAnswers++;
        else prefix.answers.set(memo, (tokens = await greedyOnPrefix(o.model, prefix.cache, suffixIds, prefix.blocks.get(condition.name)!, maxNew, eos)));
        const text = tok.decode(tokens.filter((t) => !eos.has(t)), true);
        const scored = scorers.get(condition.name)!.add(item, text);
        await write(seq, {
          benchmark: item.benchmark, condition: condition.name, id: item.id, group: item.group, imageKey: item.imageKey,
          ...(item.pairId !== undefined ? { pairId: item.pairId } : {}), truth: item.truth, output: text, tokens,
          stopped: tokens.length > 0 && eos.has(tokens[tokens.length - 1]), parsed: scored.parsed, correct: scored.correct,
          promptTokens: prefix.cache.length + suffixIds.length, imageTokens: prefix.imageTokens, format: format.name,
        });
      }
      items++;
      o.onItem?.(items, item);
    }
    await writer?.commit();
  } catch (e) {
    await writer?.abort();
    throw e;
  }

  const conditions = o.conditions.map((c): ConditionResult => {
    const s = scorers.get(c.name)!;
    const positions = blockedGridPositions(c);
    return {
      name: c.name, blockedLayers: blockedLayers(c), ...(positions !== undefined ? { blockedPositions: positions } : {}),
      ...(s.seen.has('pope') ? { pope: { 'lmms-exact': s.pope['lmms-exact'].result(), 'llava-first-sentence': s.pope['llava-first-sentence'].result() } } : {}),
      ...(s.seen.has('mme') ? { mme: { ...s.mme.result(), parser: MME_PARSER_NAME } } : {}),
      ...(s.seen.has('blink') ? { blink: { ...s.blink.result(), parser: BLINK_PARSER_NAME } } : {}),
    };
  });
  return { format: format.name, conditions, items, prefills, reusedAnswers, prompts };
}

/**
 * Token ids of the text after the prefix. Tokenizing prefix and suffix apart must give the ids of the whole prompt
 * (true when the prefix ends in a special token such as <image>, which BPE never merges across); checked every time.
 */
function suffixTokens(tok: EvalModel['tokenizer'], prefixIds: readonly number[], full: string, item: EvalItem): number[] {
  const ids = tok.encode(full);
  const aligned = ids.length > prefixIds.length && prefixIds.every((id, i) => ids[i] === id);
  if (!aligned) {
    throw new KvlensInputError('the prompt does not tokenize as prefix + suffix at the last image placeholder, so the image prefix cannot be shared', `${item.benchmark} ${item.id}`);
  }
  return ids.slice(prefixIds.length);
}

/**
 * Greedy decoding continuing on an immutable prefix cache. Every call's tokens are queries blocked from the resolved
 * image keys in the chosen layers; the prefix (and its image) is never recomputed. Returns the new tokens, the stop
 * id included when reached.
 */
export async function greedyOnPrefix(
  model: Pick<EvalModel, 'continue'>, prefix: KvCache, suffixIds: readonly number[], blocks: readonly KeyBlock[], maxNewTokens: number, eos: ReadonlySet<number>,
): Promise<number[]> {
  const specsFor = (start: number, n: number) => blockSpecsFor(blocks, span(start, start + n));
  let out = await model.continue(prefix, [[...suffixIds]], { block: specsFor(prefix.length, suffixIds.length), logitsAt: 'last' });
  const tokens: number[] = [];
  for (;;) {
    const next = argmaxRows(out.logits!)[0];
    tokens.push(next);
    if (eos.has(next) || tokens.length >= maxNewTokens) return tokens;
    out = await model.continue(out.cache, [[next]], { block: specsFor(out.cache.length, 1), logitsAt: 'last' });
  }
}
