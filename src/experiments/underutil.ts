// Under-utilisation (paper §6): on BLINK's image-comparison subtasks (Art Style first), is the answer in the image
// value tokens even when the MLM gets the question wrong?
//
// Per question, ONE prefill of the MLM's own prompt prefix (system turn, user role, every image) gives both:
//   - the value answer: per LM layer, each image's value tokens (lm.{L}.attn.v, heads concatenated) mean-pooled; the
//     candidate whose pooled values are most cosine-similar to the reference's (the first image) is the answer
//     (choice k = image k + 2, as the prompts word it: "(A) the second image");
//   - the MLM answer: greedy decoding of the question on that cache, parsed as lmms-eval does (leading letter).
// The layer is chosen per subtask by best value accuracy, two ways, both written: on all its questions with the 2x2
// table (value right/wrong x MLM right/wrong) counted on all of them ('all', the paper's rate over every Art Style
// question), and on a seeded held-out share with the table counted on the rest ('split'). `layerChoice` picks the
// headline; the other is in `alternatives`. With encode 'alone' each image's values come from its own prefill of the
// model's prompt template (no image attends to another); 'joint' reads them from the MLM's multi-image prefill.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { iterateDataset, type BlinkSample } from '../data/index.js';
import { greedyOnPrefix, type EvalModel } from '../eval/runner.js';
import { JsonlWriter } from '../eval/jsonl.js';
import { parseBlinkLetter } from '../eval/parsers.js';
import { lmmsEvalFormat } from '../eval/prompts.js';
import { blinkItem, LMMS_MAX_NEW_TOKENS } from '../eval/tasks.js';
import type { TokenMap } from '../preprocess/token-map.js';
import type { Underutil, UnderutilTable } from '../results/schema.js';
import { selectLayers } from '../taps/names.js';
import type { Tensor } from '../tensor/tensor.js';
import { KvlensInputError } from '../util/errors.js';
import { Rng } from '../util/random.js';
import { DEFAULT_UNDERUTIL_SUBTASKS, type UnderutilConfig } from './config.js';

export const UNDERUTIL_RULE = 'per image: image-token values (heads concatenated) mean-pooled; answer = the candidate with the highest cosine similarity to the reference (first) image';

export function underutilRule(encode: 'alone' | 'joint'): string {
  return `${UNDERUTIL_RULE}; values from ${encode === 'alone' ? 'each image encoded alone (its own prefill of the model\'s prompt template, one image, no question)' : 'the joint multi-image BLINK prefill (later images attend to earlier ones)'}`;
}

/** Per subtask: layer chosen on all questions, table on all (an oracle layer: the paper's rate over every question). */
export function chooseOnAll(outcomes: readonly QuestionOutcome[], layers: readonly number[]): { name: string; layer: number; table: UnderutilTable }[] {
  return [...new Set(outcomes.map((o) => o.subtask))].map((name) => {
    const mine = outcomes.filter((o) => o.subtask === name);
    const li = bestLayer(mine, layers.length);
    return { name, layer: layers[li], table: table(mine, li) };
  });
}

/** Per subtask: layer chosen on a seeded held-out share, table on the rest. */
export function chooseOnSplit(outcomes: readonly QuestionOutcome[], layers: readonly number[], heldOut: number, seed: number): { name: string; layer: number; table: UnderutilTable }[] {
  return [...new Set(outcomes.map((o) => o.subtask))].map((name, i) => {
    const mine = outcomes.filter((o) => o.subtask === name);
    const split = splitHeldOut(mine, heldOut, seed + i);
    const li = bestLayer(split.heldOut, layers.length);
    return { name, layer: layers[li], table: table(split.scored, li) };
  });
}

/** Mean over the image's grid tokens (base + high-res, newlines excluded) of a [1, kvHead, pos, dHead] tap. */
export function pooledImageValues(t: Tensor, map: TokenMap, image: number): Float64Array {
  const [, heads, len, dHead] = t.shape; // [1, kvHead, pos, dHead]
  const out = new Float64Array(heads * dHead);
  const run = map.runs[image];
  let n = 0;
  for (let p = run.start; p < run.end; p++) {
    const e = map.entries[p];
    if (!e || e.view === 'newline') continue;
    n++;
    for (let h = 0; h < heads; h++) {
      const base = (h * len + p) * dHead;
      for (let d = 0; d < dHead; d++) out[h * dHead + d] += Number(t.data[base + d]);
    }
  }
  if (n === 0) throw new KvlensInputError(`image ${image} of the prompt has no grid tokens`, 'token map');
  for (let i = 0; i < out.length; i++) out[i] /= n;
  return out;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/** The choice letter picked by the values: candidate images 1..n-1 against the reference image 0. */
export function valueAnswer(pooled: readonly ArrayLike<number>[]): string {
  let best = 1;
  let bestSim = -Infinity;
  for (let k = 1; k < pooled.length; k++) {
    const s = cosine(pooled[0], pooled[k]);
    if (s > bestSim) { bestSim = s; best = k; }
  }
  return String.fromCharCode(64 + best); // image k (0-based) is choice k: A = the second image
}

/** Per question: whether the values were right at each analysed layer, and whether the MLM was. */
export interface QuestionOutcome {
  readonly id: string;
  readonly subtask: string;
  readonly valueRight: boolean[];
  readonly mlmRight: boolean;
}

export function table(outcomes: readonly QuestionOutcome[], layerIndex: number): UnderutilTable {
  const t = { valueRightMlmRight: 0, valueRightMlmWrong: 0, valueWrongMlmRight: 0, valueWrongMlmWrong: 0 };
  for (const o of outcomes) {
    const v = o.valueRight[layerIndex];
    if (v && o.mlmRight) t.valueRightMlmRight++;
    else if (v) t.valueRightMlmWrong++;
    else if (o.mlmRight) t.valueWrongMlmRight++;
    else t.valueWrongMlmWrong++;
  }
  return t;
}

/** Seeded split of a subtask's questions: the held-out part chooses the layer, the rest is scored. */
export function splitHeldOut<T>(items: readonly T[], fraction: number, seed: number): { heldOut: T[]; scored: T[] } {
  if (items.length < 2) throw new KvlensInputError(`a subtask needs at least 2 questions for a held-out layer choice, got ${items.length}`);
  const order = new Rng(seed).shuffle(Array.from(items.keys()));
  const k = Math.min(items.length - 1, Math.max(1, Math.round(items.length * fraction)));
  const held = new Set(order.slice(0, k));
  return { heldOut: items.filter((_, i) => held.has(i)), scored: items.filter((_, i) => !held.has(i)) };
}

/** The layer index (into the analysed layers) with the best value accuracy on `items`; ties go to the earlier layer. */
export function bestLayer(items: readonly QuestionOutcome[], nLayers: number): number {
  let best = 0, bestHits = -1;
  for (let i = 0; i < nLayers; i++) {
    const hits = items.filter((o) => o.valueRight[i]).length;
    if (hits > bestHits) { bestHits = hits; best = i; }
  }
  return best;
}

function suffixIds(tok: EvalModel['tokenizer'], prefix: string, full: string, where: string): number[] {
  const p = tok.encode(prefix);
  const ids = tok.encode(full);
  if (!(ids.length > p.length && p.every((id, i) => ids[i] === id))) throw new KvlensInputError('the prompt does not tokenize as prefix + suffix at the last image', where);
  return ids.slice(p.length);
}

export interface UnderutilRun {
  readonly result: Underutil;
  readonly outcomes: QuestionOutcome[];
  /** Questions left out (not reference + one image per choice), with why. */
  readonly skipped: string[];
  readonly prompt?: string;
  readonly layers: number[];
}

/** Subtasks to run: the configured list, or the defaults present under the BLINK root (Art_Style first). */
export function underutilSubtasks(cfg: Pick<UnderutilConfig, 'subtasks' | 'data'>): string[] {
  if (cfg.subtasks) return [...cfg.subtasks];
  const present = DEFAULT_UNDERUTIL_SUBTASKS.filter((s) => existsSync(join(cfg.data, s)));
  if (present.length === 0) throw new KvlensInputError(`none of the default image-comparison subtasks (${DEFAULT_UNDERUTIL_SUBTASKS.join(', ')}) is under the BLINK root`, cfg.data);
  return present;
}

export async function runUnderutil(
  cfg: UnderutilConfig, model: EvalModel, out: string, modelName: string,
  onItem?: (done: number) => void,
): Promise<UnderutilRun> {
  const layers = selectLayers(cfg.layers, model.dims.lmLayers, `layers ${cfg.layers}`);
  const taps = layers.map((l) => `lm.${l}.attn.v`);
  const format = lmmsEvalFormat(model.family);
  const tok = model.tokenizer;
  const eos = new Set(model.eosTokenIds);
  const maxNew = cfg.maxNewTokens ?? LMMS_MAX_NEW_TOKENS.blink;
  const outcomes: QuestionOutcome[] = [];
  const skipped: string[] = [];
  let prompt: string | undefined;
  const writer = await JsonlWriter.create(join(out, 'results', 'outputs', 'underutil.jsonl'));
  try {
    for (const sub of underutilSubtasks(cfg)) {
      for await (const s of iterateDataset('blink', cfg.data, { split: 'val', subset: sub, limit: cfg.limit }) as AsyncGenerator<BlinkSample>) {
        const item = blinkItem(s);
        if (item.images.length !== s.choices.length + 1) {
          skipped.push(`${s.idx}: ${item.images.length} images for ${s.choices.length} choices (needs a reference + one image per choice)`);
          continue;
        }
        const rendered = format.render(item.context, item.images.length);
        prompt ??= rendered.prefix + rendered.suffix;
        const prepared = await model.prepare({ images: item.images, text: rendered.prefix });
        const fwd = await model.forward({ ...model.imageRequest(prepared), taps: cfg.encode === 'joint' ? taps : [], logitsAt: 'none' });
        const tapOf = (f: typeof fwd, tap: string) => {
          const t = f.taps.get(tap);
          if (!t) throw new KvlensInputError(`the forward returned no ${tap}`, s.idx);
          return t;
        };
        // pooled[tap][image]
        let pooled: Float64Array[][];
        if (cfg.encode === 'joint') {
          pooled = taps.map((tap) => item.images.map((_, i) => pooledImageValues(tapOf(fwd, tap), prepared.tokenMap, i)));
        } else {
          pooled = taps.map(() => []);
          for (const image of item.images) {
            const single = await model.prepare({ images: [image], text: format.render('', 1).prefix });
            const f1 = await model.forward({ ...model.imageRequest(single), taps, logitsAt: 'none' });
            taps.forEach((tap, k) => pooled[k].push(pooledImageValues(tapOf(f1, tap), single.tokenMap, 0)));
          }
        }
        const valueAnswers = pooled.map((perImage) => valueAnswer(perImage));
        const similarities = pooled.map((perImage) => perImage.slice(1).map((c) => Number(cosine(perImage[0], c).toFixed(6))));
        const tokens = await greedyOnPrefix(model, fwd.cache, suffixIds(tok, rendered.prefix, rendered.prefix + rendered.suffix, `BLINK ${s.idx}`), [], maxNew, eos);
        const output = tok.decode(tokens.filter((t) => !eos.has(t)), true);
        const parsed = parseBlinkLetter(output);
        const o: QuestionOutcome = { id: s.idx, subtask: s.subTask, valueRight: valueAnswers.map((a) => a === item.truth), mlmRight: parsed === item.truth };
        outcomes.push(o);
        await writer.write({ id: s.idx, subtask: s.subTask, truth: item.truth, output, parsed, mlmRight: o.mlmRight, layers, valueAnswers, similarities, encode: cfg.encode });
        onItem?.(outcomes.length);
      }
    }
    await writer.commit();
  } catch (e) {
    await writer.abort();
    throw e;
  }
  if (outcomes.length === 0) throw new KvlensInputError('no BLINK question with a reference image and one image per choice', cfg.data);
  const onAll = { layerChoice: LAYER_CHOICE_ALL, subtasks: chooseOnAll(outcomes, layers) };
  const onSplit = cfg.heldOut > 0
    ? { layerChoice: `split: best value accuracy on a seeded ${cfg.heldOut} share of each subtask's questions (seed ${cfg.seed} + subtask index); table on the rest`, subtasks: chooseOnSplit(outcomes, layers, cfg.heldOut, cfg.seed) }
    : undefined;
  const [head, other] = cfg.layerChoice === 'split' && onSplit ? [onSplit, onAll] : [onAll, onSplit];
  const result: Underutil = {
    model: modelName, tap: 'lm.{L}.attn.v', rule: underutilRule(cfg.encode),
    layerChoice: head.layerChoice, subtasks: head.subtasks, ...(other ? { alternatives: [other] } : {}),
  };
  return { result, outcomes, skipped, prompt, layers };
}

/** The under-utilisation rate of a table: value right and MLM wrong, over all scored questions. */
export const LAYER_CHOICE_ALL = 'all: best value accuracy over all of each subtask\'s questions (an oracle layer); table on all of them';

export function underutilRate(t: UnderutilTable): number {
  const n = t.valueRightMlmRight + t.valueRightMlmWrong + t.valueWrongMlmRight + t.valueWrongMlmWrong;
  return n ? t.valueRightMlmWrong / n : 0;
}
