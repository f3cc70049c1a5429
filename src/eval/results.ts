// EvaluateResult -> results/benchmarks.json (src/results/schema.ts). POPE is stored under ONE named parser per file
// (the schema holds one POPE block per condition); MME and BLINK carry their parser's name too.

import { BenchmarksSchema, type BenchmarkCondition, type Benchmarks } from '../results/schema.js';
import { KvlensInputError } from '../util/errors.js';
import type { PopeParserName } from './parsers.js';
import type { ConditionResult, EvaluateResult } from './runner.js';

export function toBenchmarkCondition(c: ConditionResult, popeParser: PopeParserName = 'lmms-exact'): BenchmarkCondition {
  return {
    name: c.name,
    blockedLayers: c.blockedLayers,
    ...(c.blockedPositions !== undefined ? { blockedPositions: c.blockedPositions } : {}),
    ...(c.pope ? { pope: { parser: popeParser, splits: c.pope[popeParser] } } : {}),
    ...(c.mme ? {
      mme: {
        parser: c.mme.parser, perception: c.mme.perception, cognition: c.mme.cognition,
        subtasks: c.mme.subtasks.map((s) => ({ name: s.name, category: s.category, acc: s.acc, accPlus: s.accPlus, score: s.score, images: s.images })),
      },
    } : {}),
    ...(c.blink ? { blink: { parser: c.blink.parser, subtasks: c.blink.subtasks, macro: c.blink.macro, micro: c.blink.micro, unparsedRate: c.blink.unparsedRate } } : {}),
  };
}

/** The validated benchmarks.json value for one model's run (write it with writeRun.benchmarks). */
export function toBenchmarks(model: string, result: EvaluateResult, popeParser: PopeParserName = 'lmms-exact'): Benchmarks {
  const value = { model, conditions: result.conditions.map((c) => toBenchmarkCondition(c, popeParser)) };
  const parsed = BenchmarksSchema.safeParse(value);
  if (!parsed.success) throw new KvlensInputError(`benchmark results do not fit results/benchmarks.json: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}
