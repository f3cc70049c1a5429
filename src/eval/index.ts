// Benchmark harness: lmms-eval-compatible POPE / MME / BLINK prompts, parsers and metrics, run with and without
// attention blocking on a shared image prefix.
export * from './prompts.js';
export * from './parsers.js';
export * from './metrics.js';
export * from './tasks.js';
export * from './conditions.js';
export { evaluateBenchmark, greedyOnPrefix, type EvaluateOptions, type EvaluateResult, type ConditionResult, type EvalModel } from './runner.js';
export { toBenchmarks, toBenchmarkCondition } from './results.js';
export { JsonlWriter } from './jsonl.js';
export { blockSpecsFor, keyBlocksByLayer, type KeyBlock } from './blocks.js';
