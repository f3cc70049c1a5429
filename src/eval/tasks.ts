// Benchmark tasks as typed objects (lmms-eval's YAML + utils, as data): a dataset sample becomes an EvalItem (its
// images, the task context, the ground truth and the keys that group it), and an answer is scored by the task's
// parser(s) into the task's accumulator.

import type { AnySample, BlinkSample, ImageSource, MmeSample, PopeSample } from '../data/types.js';
import type { ImageInput } from '../preprocess/processor.js';
import { KvlensInputError } from '../util/errors.js';
import { BlinkAccumulator, MmeAccumulator, PopeAccumulator } from './metrics.js';
import { BLINK_PARSER_NAME, blinkTruth, MME_PARSER_NAME, mmeTruth, parseBlinkLetter, parseMmeAnswer, POPE_PARSERS, type PopeParserName, type YesNo } from './parsers.js';
import { blinkContext, mmeContext, popeContext, type PrePost } from './prompts.js';

export type BenchmarkName = 'pope' | 'mme' | 'blink';

/** lmms-eval's max_new_tokens per task (BLINK's 1024 is the task YAML's; POPE 128, MME 16). */
export const LMMS_MAX_NEW_TOKENS: Record<BenchmarkName, number> = { pope: 128, mme: 16, blink: 1024 };

export interface EvalItem {
  readonly benchmark: BenchmarkName;
  /** Unique within the benchmark (POPE: split/question_id, MME: question_id#k, BLINK: idx). */
  readonly id: string;
  /** POPE split, MME subtask or BLINK subtask. */
  readonly group: string;
  /** Identifies the image(s): items with the same key (and the same prompt prefix) share one prefilled prefix. */
  readonly imageKey: string;
  readonly images: readonly ImageInput[];
  /** doc_to_text: the task context (question + task pre/post prompt). */
  readonly context: string;
  /** 'yes' | 'no' (POPE, MME) or a choice letter (BLINK). */
  readonly truth: string;
  /** MME: the question_id shared by the image's two questions (acc+ pairs them). */
  readonly pairId?: string;
}

export interface TaskPromptOptions {
  readonly pope?: Pick<PrePost, 'post'>;
  readonly mme?: PrePost;
  readonly blink?: PrePost;
}

function imageInput(src: ImageSource): ImageInput {
  return src.kind === 'path' ? src.path : src.bytes;
}

function imageKeyOf(src: ImageSource): string {
  return src.kind === 'path' ? src.path : `bytes:${src.name}`;
}

export function popeItem(s: PopeSample, o: TaskPromptOptions = {}): EvalItem {
  return {
    benchmark: 'pope', id: `${s.split}/${s.questionId}`, group: s.split, imageKey: imageKeyOf(s.image), images: [imageInput(s.image)],
    context: popeContext(s.question, o.pope), truth: s.answer,
  };
}

/** MME: the two questions of an image share questionId; ids get the running index so they stay unique. */
export function mmeItem(s: MmeSample, index: number, o: TaskPromptOptions = {}): EvalItem {
  return {
    benchmark: 'mme', id: `${s.questionId}#${index}`, group: s.task, imageKey: imageKeyOf(s.image), images: [imageInput(s.image)],
    context: mmeContext(s.question, o.mme), truth: mmeTruth(s.answer), pairId: s.questionId,
  };
}

export function blinkItem(s: BlinkSample, o: TaskPromptOptions = {}): EvalItem {
  const images = s.images.filter((i): i is ImageSource => i !== null);
  if (images.length === 0) throw new KvlensInputError('row has no image', `BLINK ${s.idx}`);
  if (s.answer === '') throw new KvlensInputError('row has no answer (the test split withholds them; evaluate the val split)', `BLINK ${s.idx}`);
  // The row's images live only in this row: key by idx (bytes have no path to share).
  return {
    benchmark: 'blink', id: s.idx, group: s.subTask, imageKey: `blink:${s.idx}`, images: images.map(imageInput),
    context: blinkContext(s.prompt, s.choices.length, o.blink), truth: blinkTruth(s.answer),
  };
}

/** Dataset samples (POPE, MME, BLINK) -> EvalItems, lazily. EvalItems pass through. */
export async function* toEvalItems(
  samples: AsyncIterable<AnySample | EvalItem> | Iterable<AnySample | EvalItem>,
  o: TaskPromptOptions = {},
): AsyncGenerator<EvalItem> {
  let mmeIndex = 0;
  for await (const s of samples) {
    if ('benchmark' in s) yield s;
    else if (s.dataset === 'pope') yield popeItem(s, o);
    else if (s.dataset === 'mme') yield mmeItem(s, mmeIndex++, o);
    else if (s.dataset === 'blink') yield blinkItem(s, o);
    else throw new KvlensInputError(`dataset "${(s as { dataset: string }).dataset}" is not a benchmark (expected pope, mme or blink)`);
  }
}

/** How one answer was read: per parser, the parse and whether it is right. */
export interface ScoredAnswer {
  readonly parsed: Record<string, string | null>;
  readonly correct: Record<string, boolean>;
}

/** One condition's accumulators over every benchmark in the stream. */
export class BenchmarkScorer {
  readonly pope = { 'lmms-exact': new PopeAccumulator(), 'llava-first-sentence': new PopeAccumulator() } satisfies Record<PopeParserName, PopeAccumulator>;
  readonly mme = new MmeAccumulator();
  readonly blink = new BlinkAccumulator();
  readonly seen = new Set<BenchmarkName>();

  /**
   * Give the item's group (and MME image) its place in the result order now; a runner that answers items out of input
   * order declares them all in input order first, so the results read exactly as in input order.
   */
  declare(item: EvalItem): void {
    this.seen.add(item.benchmark);
    if (item.benchmark === 'pope') for (const acc of Object.values(this.pope)) acc.declare(item.group);
    else if (item.benchmark === 'mme') { if (item.pairId !== undefined) this.mme.declare(item.group, item.pairId); }
    else this.blink.declare(item.group);
  }

  add(item: EvalItem, output: string): ScoredAnswer {
    this.seen.add(item.benchmark);
    switch (item.benchmark) {
      case 'pope': {
        const truth = item.truth as 'yes' | 'no';
        const parsed: Record<string, YesNo> = {};
        const correct: Record<string, boolean> = {};
        for (const name of Object.keys(POPE_PARSERS) as PopeParserName[]) {
          const p = POPE_PARSERS[name](output);
          this.pope[name].add(item.group, truth, p);
          parsed[name] = p;
          correct[name] = p === truth;
        }
        return { parsed, correct };
      }
      case 'mme': {
        const p = parseMmeAnswer(output);
        const ok = p === item.truth;
        if (item.pairId === undefined) throw new KvlensInputError('MME item has no pairId (question_id)', item.id);
        this.mme.add(item.group, item.pairId, ok);
        return { parsed: { [MME_PARSER_NAME]: p }, correct: { [MME_PARSER_NAME]: ok } };
      }
      case 'blink': {
        const p = parseBlinkLetter(output);
        this.blink.add(item.group, item.truth, p);
        return { parsed: { [BLINK_PARSER_NAME]: p }, correct: { [BLINK_PARSER_NAME]: p === item.truth } };
      }
    }
  }
}
