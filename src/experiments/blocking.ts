// The blocking experiment (paper §5.4): POPE / MME / BLINK evaluated unchanged, with text queries blocked from the
// input-agnostic image keys in the chosen layers, and with a control blocking as many random image keys. The flagged
// positions come from a keys run (key_variance.json) or are computed first; each benchmark image is prefilled once
// and every question and condition continues on its cache (src/eval/runner.ts) — POPE's images once for all its splits.

import { join } from 'node:path';
import { iterateDataset, type AnySample } from '../data/index.js';
import { evaluateBenchmark, type ConditionResult, type EvalModel, type EvaluateResult } from '../eval/runner.js';
import type { EvalCondition } from '../eval/conditions.js';
import { toBenchmarks } from '../eval/results.js';
import type { BenchmarkName } from '../eval/tasks.js';
import { viewGrids } from '../preprocess/token-map.js';
import { readJsonValidated } from '../results/io.js';
import { KeyVarianceSchema, type Benchmarks, type KeyVariance } from '../results/schema.js';
import { selectLayers } from '../taps/names.js';
import { KvlensInputError } from '../util/errors.js';
import { blockedCount, flaggedFromResult, flaggedKeyBlocks, flaggedKeyBlocksViews, flaggedViewsFromResult, randomControl, type FlaggedKeys, type GridMatch } from './keys/index.js';
import type { BenchmarkSpec, BlockingConfig } from './config.js';

export const OUTPUTS_DIR = 'results/outputs';

/** Samples of one benchmark spec (POPE: its splits in turn), lazily. */
export async function* benchmarkSamples(spec: BenchmarkSpec): AsyncGenerator<AnySample> {
  if (spec.name === 'pope') {
    for (const split of spec.splits) yield* iterateDataset('pope', spec.data, { split, imageRoot: spec.imageRoot, limit: spec.limit });
  } else if (spec.name === 'mme') yield* iterateDataset('mme', spec.data, { subset: spec.subset, limit: spec.limit });
  else yield* iterateDataset('blink', spec.data, { split: spec.split, subset: spec.subset, limit: spec.limit });
}

/**
 * The flagged and random-control sets of the chosen layers from a key-variance result. The control is drawn again with
 * the keys run's seed (randomControl seeds each layer from (seed, layer), so layers the keys run covered get exactly
 * the stored positions, and other layers get their own draw).
 */
export interface BlockingSets {
  readonly layers: number[];
  /** The key-variance run's main view (blockViews 'base'). */
  readonly flagged: FlaggedKeys;
  readonly random: FlaggedKeys;
  /** blockViews 'all': every view's flagged / control set (main view first). */
  readonly views?: { readonly flagged: FlaggedKeys[]; readonly random: FlaggedKeys[] };
}

export function blockingSets(kv: KeyVariance, lmLayers: number, blockLayers: string | undefined, seed: number, blockViews: 'base' | 'all' = 'base'): BlockingSets {
  const layers = blockLayers ? selectLayers(blockLayers, lmLayers, `blockLayers ${blockLayers}`) : [...kv.blockedLayers];
  const missing = layers.filter((l) => !kv.layers.some((x) => x.layer === l));
  if (missing.length) throw new KvlensInputError(`key_variance.json has no variance for layer(s) ${missing.join(', ')} (analysed: ${kv.layers.map((l) => l.layer).join(', ')})`, 'blockLayers');
  const { flagged } = flaggedFromResult(kv, layers);
  const random = randomControl(flagged, kv.randomControl?.seed ?? seed);
  if (blockViews === 'base') return { layers, flagged, random };
  return { layers, flagged, random, views: flaggedViewsFromResult(kv, layers, seed) };
}

/**
 * The benchmark conditions of the experiment, as evaluateBenchmark takes them. `fallbacks` (blockViews 'all' with
 * grid groups, gridMatch 'nearest') counts the prefills whose high-res grid had no group of its own, by
 * "<view> <shape> <- <group shape>" (the input-agnostic condition only, so each prefill counts once).
 */
export function blockingConditions(names: readonly string[], sets: BlockingSets, gridMatch: GridMatch, fallbacks?: Map<string, number>): EvalCondition[] {
  return names.map((name): EvalCondition => {
    if (name === 'none') return { name };
    if (name === 'block-all-image') return { name, block: [{ layers: sets.layers, keys: 'all' }], blockedLayers: sets.layers };
    if (sets.views) {
      const all = name === 'block-input-agnostic' ? sets.views.flagged : sets.views.random;
      return {
        name,
        blocksFor: (map) => flaggedKeyBlocksViews(all, map, gridMatch, name === 'block-input-agnostic' && fallbacks
          ? (e) => {
            const k = `${e.view} ${e.grid.rows}x${e.grid.cols} <- ${e.from.rows}x${e.from.cols}`;
            fallbacks.set(k, (fallbacks.get(k) ?? 0) + 1);
          }
          : undefined),
        blockedLayers: sets.layers,
        blockedPositions: all.reduce((a, f) => a + blockedCount(f), 0),
      };
    }
    const set = name === 'block-input-agnostic' ? sets.flagged : sets.random;
    return {
      name,
      blocksFor: (map) => flaggedKeyBlocks(set, viewGrids(map, set.view), gridMatch),
      blockedLayers: sets.layers,
      blockedPositions: blockedCount(set),
    };
  });
}

/** Merge per-benchmark results (same conditions, in order) into one result for benchmarks.json. */
export function mergeResults(results: readonly EvaluateResult[]): EvaluateResult {
  const conditions: ConditionResult[] = results[0].conditions.map((c, i) => Object.assign({}, ...results.map((r) => r.conditions[i]), { name: c.name }) as ConditionResult);
  return {
    format: results[0].format,
    conditions,
    items: results.reduce((a, r) => a + r.items, 0),
    prefills: results.reduce((a, r) => a + r.prefills, 0),
    reusedAnswers: results.reduce((a, r) => a + (r.reusedAnswers ?? 0), 0),
    prompts: Object.assign({}, ...results.map((r) => r.prompts)) as EvaluateResult['prompts'],
  };
}

export interface BlockingRun {
  readonly benchmarks: Benchmarks;
  readonly result: EvaluateResult;
  /** One rendered prompt per benchmark (manifest). */
  readonly prompts: Partial<Record<BenchmarkName, string>>;
  /** Prefills whose high-res grid had no grid group of its own (gridMatch 'nearest'), by "<view> <shape> <- <group>". */
  readonly gridFallbacks: ReadonlyMap<string, number>;
}

export async function runBlockingBenchmarks(
  cfg: Pick<BlockingConfig, 'benchmarks' | 'conditions' | 'blockLayers' | 'gridMatch' | 'maxNewTokens' | 'popeParser' | 'prefixCacheSize' | 'seed'> & { blockViews?: BlockingConfig['blockViews'] },
  kv: KeyVariance, model: EvalModel, out: string, modelName: string,
  onItem?: (benchmark: string, done: number) => void,
): Promise<BlockingRun> {
  const sets = blockingSets(kv, model.dims.lmLayers, cfg.blockLayers, cfg.seed, cfg.blockViews ?? 'base');
  const gridFallbacks = new Map<string, number>();
  const conditions = blockingConditions(cfg.conditions, sets, cfg.gridMatch, gridFallbacks);
  const results: EvaluateResult[] = [];
  for (const spec of cfg.benchmarks) {
    results.push(await evaluateBenchmark({
      model, samples: benchmarkSamples(spec), conditions,
      ...(cfg.maxNewTokens ? { maxNewTokens: cfg.maxNewTokens } : {}),
      outputsPath: join(out, OUTPUTS_DIR, `${spec.name}.jsonl`),
      prefixCacheSize: cfg.prefixCacheSize,
      // POPE's splits ask about the same images: answer image by image so each is prefilled once for all splits.
      imageMajor: spec.name === 'pope',
      onItem: (done) => onItem?.(spec.name, done),
    }));
  }
  const merged = mergeResults(results);
  return { benchmarks: toBenchmarks(modelName, merged, cfg.popeParser), result: merged, prompts: merged.prompts, gridFallbacks };
}

export function readKeyVariance(path: string): Promise<KeyVariance> {
  return readJsonValidated(path, KeyVarianceSchema);
}
