// Benchmark metrics as streaming accumulators: add one scored answer at a time, read the summary at the end. Memory
// is O(groups) for POPE/BLINK and O(images) for MME (acc+ pairs an image's two questions), never O(outputs).
// Output shapes are those of results/benchmarks.json (src/results/schema.ts): fractions in [0, 1], MME in points.

import { KvlensInputError } from '../util/errors.js';
import type { YesNo } from './parsers.js';

// ---- POPE ----

export interface PopeSplitMetrics {
  split: string;
  n: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  /** Fraction of PREDICTIONS that were "yes" (LLaVA / POPE's yes-ratio), over all n answers. */
  yesRatio: number;
  /** Fraction of answers the parser could not read as yes/no (always 0 for llava-first-sentence). */
  unparsedRate: number;
  /** lmms-eval's `pope_yes_ratio`: the fraction of GROUND-TRUTH yes (0.5 on balanced POPE), kept and named as such. */
  gtYesRatio: number;
}

interface PopeCounts { n: number; tp: number; fp: number; tn: number; fn: number; predYes: number; unparsed: number; gtYes: number }

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);

/**
 * Per split, lmms-eval's definitions: accuracy = exact matches / n (unparseable = wrong); precision = TP / (TP + FP);
 * recall = TP / (TP + FN) where FN needs a parsed "no", so unparseable answers to "yes" questions leave the recall
 * denominator (lmms-eval's quirk); F1 = 2PR / (P + R); each 0 when its denominator is 0.
 */
export class PopeAccumulator {
  private readonly splits = new Map<string, PopeCounts>();

  /** Fix a split's place in the result order before its answers arrive (a runner answering out of input order). */
  declare(split: string): void {
    if (!this.splits.has(split)) this.splits.set(split, { n: 0, tp: 0, fp: 0, tn: 0, fn: 0, predYes: 0, unparsed: 0, gtYes: 0 });
  }

  add(split: string, truth: 'yes' | 'no', pred: YesNo): void {
    let c = this.splits.get(split);
    if (!c) this.splits.set(split, (c = { n: 0, tp: 0, fp: 0, tn: 0, fn: 0, predYes: 0, unparsed: 0, gtYes: 0 }));
    c.n++;
    if (truth === 'yes') c.gtYes++;
    if (pred === null) c.unparsed++;
    if (pred === 'yes') c.predYes++;
    if (truth === 'yes' && pred === 'yes') c.tp++;
    else if (truth === 'no' && pred === 'yes') c.fp++;
    else if (truth === 'no' && pred === 'no') c.tn++;
    else if (truth === 'yes' && pred === 'no') c.fn++;
  }

  /** Splits in first-seen order. */
  result(): PopeSplitMetrics[] {
    return [...this.splits].map(([split, c]) => {
      const precision = ratio(c.tp, c.tp + c.fp);
      const recall = ratio(c.tp, c.tp + c.fn);
      return {
        split, n: c.n, accuracy: ratio(c.tp + c.tn, c.n), precision, recall,
        f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0,
        yesRatio: ratio(c.predYes, c.n), unparsedRate: ratio(c.unparsed, c.n), gtYesRatio: ratio(c.gtYes, c.n),
      };
    });
  }
}

// ---- MME ----

export const MME_PERCEPTION = ['existence', 'count', 'position', 'color', 'posters', 'celebrity', 'scene', 'landmark', 'artwork', 'OCR'] as const;
export const MME_COGNITION = ['commonsense_reasoning', 'numerical_calculation', 'text_translation', 'code_reasoning'] as const;

export function mmeCategory(subtask: string): 'perception' | 'cognition' {
  if ((MME_PERCEPTION as readonly string[]).includes(subtask)) return 'perception';
  if ((MME_COGNITION as readonly string[]).includes(subtask)) return 'cognition';
  throw new KvlensInputError(`unknown MME subtask "${subtask}" (expected one of ${[...MME_PERCEPTION, ...MME_COGNITION].join(', ')})`);
}

export interface MmeSubtaskMetrics {
  name: string;
  category: 'perception' | 'cognition';
  /** Images (question pairs) behind the numbers. */
  images: number;
  /** Per-question accuracy, fraction. */
  acc: number;
  /** Fraction of images with both questions right. */
  accPlus: number;
  /** 100 * (acc + accPlus), 0..200: lmms-eval's mean over images of (acc + acc+) in points. */
  score: number;
}

export interface MmeMetrics {
  subtasks: MmeSubtaskMetrics[];
  /** Sum of the perception subtask scores present (max 2000 with all ten). */
  perception: number;
  /** Sum of the cognition subtask scores present (max 800 with all four). */
  cognition: number;
}

/** lmms-eval's aggregation: per subtask, group by question_id (the image), assert exactly 2 answers per image. */
export class MmeAccumulator {
  // subtask -> image (question_id) -> [answers, correct]
  private readonly byTask = new Map<string, Map<string, [number, number]>>();

  /** Fix a subtask's and an image's place in the result order before the answers arrive. */
  declare(subtask: string, imageId: string): void {
    mmeCategory(subtask);
    let images = this.byTask.get(subtask);
    if (!images) this.byTask.set(subtask, (images = new Map()));
    if (!images.has(imageId)) images.set(imageId, [0, 0]);
  }

  add(subtask: string, imageId: string, correct: boolean): void {
    mmeCategory(subtask);
    let images = this.byTask.get(subtask);
    if (!images) this.byTask.set(subtask, (images = new Map()));
    const c = images.get(imageId) ?? [0, 0];
    c[0]++;
    if (correct) c[1]++;
    images.set(imageId, c);
  }

  result(): MmeMetrics {
    const subtasks: MmeSubtaskMetrics[] = [];
    for (const [name, images] of this.byTask) {
      let accSum = 0, plusSum = 0;
      for (const [id, [n, right]] of images) {
        if (n !== 2) throw new KvlensInputError(`MME is scored in question pairs: image ${id} of ${name} has ${n} answer(s), expected exactly 2`);
        accSum += right / 2;
        plusSum += right === 2 ? 1 : 0;
      }
      const acc = accSum / images.size;
      const accPlus = plusSum / images.size;
      subtasks.push({ name, category: mmeCategory(name), images: images.size, acc, accPlus, score: 100 * (acc + accPlus) });
    }
    const sum = (cat: string) => subtasks.filter((s) => s.category === cat).reduce((a, s) => a + s.score, 0);
    return { subtasks, perception: sum('perception'), cognition: sum('cognition') };
  }
}

// ---- BLINK ----

export interface BlinkMetrics {
  subtasks: { name: string; n: number; accuracy: number; unparsedRate: number }[];
  /** Unweighted mean of the subtask accuracies: lmms-eval's `blink` group number (weight_by_size false). */
  macro: number;
  /** Correct answers over all answers. */
  micro: number;
  unparsedRate: number;
}

export class BlinkAccumulator {
  private readonly byTask = new Map<string, { n: number; correct: number; unparsed: number }>();

  /** Fix a subtask's place in the result order before its answers arrive. */
  declare(subtask: string): void {
    if (!this.byTask.has(subtask)) this.byTask.set(subtask, { n: 0, correct: 0, unparsed: 0 });
  }

  add(subtask: string, truthLetter: string, pred: string | null): void {
    let c = this.byTask.get(subtask);
    if (!c) this.byTask.set(subtask, (c = { n: 0, correct: 0, unparsed: 0 }));
    c.n++;
    if (pred === null) c.unparsed++;
    else if (pred === truthLetter) c.correct++;
  }

  result(): BlinkMetrics {
    const subtasks = [...this.byTask].map(([name, c]) => ({ name, n: c.n, accuracy: ratio(c.correct, c.n), unparsedRate: ratio(c.unparsed, c.n) }));
    const all = [...this.byTask.values()].reduce((a, c) => ({ n: a.n + c.n, correct: a.correct + c.correct, unparsed: a.unparsed + c.unparsed }), { n: 0, correct: 0, unparsed: 0 });
    return {
      subtasks,
      macro: ratio(subtasks.reduce((a, s) => a + s.accuracy, 0), subtasks.length),
      micro: ratio(all.correct, all.n),
      unparsedRate: ratio(all.unparsed, all.n),
    };
  }
}
