// The paper's whole suite on the embedded tiny model and synthetic data, into ONE run directory with ONE report —
// what `kvlens demo` runs (issue 7: every experiment end to end in a few minutes on 2 cores).
//
//   <out>/model/                the tiny seeded checkpoint of the family (HF layout)
//   <out>/data/<dataset>/       synthetic pascal5i, spair, coco, pope, mme, blink in their real on-disk layouts (seeded)
//   <out>/stores/               feature stores: flow (fewshot-seg, correspondence), prefix-{none,correct,random,incorrect}
//   <out>/run/                  manifest.json + results/probes.{json,csv}, key_variance.json, benchmarks.json,
//                               prefix.json, underutil.json, outputs/*.jsonl; store -> the segmentation store
//   <out>/run/report/report.html  every section (layer curves, keys, benchmarks, prefix, under-utilisation)
//
// Each experiment is an ordinary validated `kvlens run` config (the same code path as an experiment file) with its out
// set to the shared run directory; their outcomes merge into one manifest (prompts and timings keyed by experiment).
// Each run replaces <out>/data, <out>/stores and <out>/run: a store resumed over data of another seed would be stale.

import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateSynthetic } from '../data/synthetic/index.js';
import type { DatasetName } from '../data/index.js';
import { TINY_MODELS } from '../models/synthetic/index.js';
import { buildReport, type ReportSummary } from '../report/build.js';
import { writeRun } from '../results/rundir.js';
import type { Manifest } from '../results/schema.js';
import { KvlensUsageError } from '../util/errors.js';
import { parseExperimentConfig, type ExperimentConfig, type ExperimentName } from './config.js';
import { buildManifest, Timings, type DatasetEntry } from './manifest.js';
import { runExperimentResults, type Outcome } from './run.js';
import { ensureDir } from '../util/dirs.js';

/** Tiny models the whole suite runs on (names as `kvlens demo --family`): the paper's three families. */
export const SUITE_FAMILIES = {
  llava_onevision: TINY_MODELS.llava_onevision, llava_next: TINY_MODELS.llava_next, qwen2_5_vl: TINY_MODELS.qwen2_5_vl,
} as const;
export type SuiteFamily = keyof typeof SUITE_FAMILIES;

/** Synthetic dataset sizes (the generators' `n`: images for pascal5i/coco, pairs for spair, per-set items for the QA sets). */
export interface SuiteSizes {
  readonly pascal5i: number;
  readonly spair: number;
  readonly coco: number;
  readonly pope: number;
  readonly mme: number;
  readonly blink: number;
}

/** About 1.5 minutes on 2 cores, blocking the longest (docs/experiments.md has the measured split per experiment). */
export const DEFAULT_SUITE_SIZES: SuiteSizes = { pascal5i: 24, spair: 10, coco: 6, pope: 2, mme: 2, blink: 4 };

export interface SuiteOptions {
  readonly out: string;
  readonly seed?: number;
  readonly family?: SuiteFamily;
  /** Unset (or undefined) sizes take DEFAULT_SUITE_SIZES. */
  readonly sizes?: { readonly [K in keyof SuiteSizes]?: number | undefined };
  /** Run only these experiments (default all five, in the order flow, keys, blocking, prefix, underutil). */
  readonly experiments?: readonly ExperimentName[];
  readonly threads?: number;
  readonly modelName?: string;
  readonly onProgress?: (message: string) => void;
}

export interface SuiteSummary {
  readonly runDir: string;
  readonly manifest: Manifest;
  readonly report: ReportSummary;
  /** Wall-clock seconds per experiment (and model, data, report). */
  readonly seconds: Record<string, number>;
}

export const SUITE_ORDER: readonly ExperimentName[] = ['flow', 'keys', 'blocking', 'prefix', 'underutil'];

/** The suite's experiment configs (validated like experiment files): the chosen ones, default all five. */
export function suiteConfigs(
  paths: { model: string; runDir: string; stores: string; data: Record<string, string> }, seed: number, counts: Pick<SuiteSizes, 'coco'>, threads?: number,
  experiments: readonly ExperimentName[] = SUITE_ORDER,
): Partial<Record<ExperimentName, ExperimentConfig>> {
  const common = { model: paths.model, out: paths.runDir, seed, dtype: 'float32', threads, stores: paths.stores };
  const { stores: _stores, ...noStores } = common;
  const fewshot = { task: 'fewshot-seg', data: paths.data.pascal5i, fold: 'pooled', shots: 1, episodes: 'per-entry' };
  // The tiny model's 4x4 base tile is too coarse for the synthetic objects: the probes read the anyres view.
  const raw: Record<ExperimentName, Record<string, unknown>> = {
    flow: { experiment: 'flow', ...common, view: 'highres', tasks: [fewshot, { task: 'correspondence', data: paths.data.spair, alphas: [0.1, 0.2] }] },
    keys: { experiment: 'keys', ...noStores, images: `dataset:coco:${paths.data.coco}`, n: counts.coco, resolution: 70, blockLayers: '-4:', threshold: 'auto' },
    blocking: {
      experiment: 'blocking', ...noStores, keyVariance: join(paths.runDir, 'results', 'key_variance.json'), blockLayers: '-4:', maxNewTokens: 8,
      benchmarks: [{ name: 'pope', data: paths.data.pope }, { name: 'mme', data: paths.data.mme }, { name: 'blink', data: paths.data.blink }],
    },
    prefix: {
      experiment: 'prefix', ...common, view: 'highres', task: fewshot, lmTaps: ['values'],
      prefixes: { correct: 'class-name', incorrect: 'other-class', random: 'seeded-words' },
    },
    underutil: { experiment: 'underutil', ...noStores, data: paths.data.blink, maxNewTokens: 8 },
  };
  const strip = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return Object.fromEntries(experiments.map((e) => [e, parseExperimentConfig(strip(raw[e]), `suite ${e}`)]));
}

/** Datasets each experiment reads. */
const NEEDS: Record<ExperimentName, DatasetName[]> = {
  flow: ['pascal5i', 'spair'], keys: ['coco'], blocking: ['pope', 'mme', 'blink'], prefix: ['pascal5i'], underutil: ['blink'],
};

export async function runSuite(opts: SuiteOptions): Promise<SuiteSummary> {
  const out = resolve(opts.out);
  const seed = opts.seed ?? 0;
  const family = opts.family ?? 'llava_onevision';
  const spec = SUITE_FAMILIES[family];
  if (!spec) throw new KvlensUsageError(`the suite has no tiny model of family "${family}"; families: ${Object.keys(SUITE_FAMILIES).join(', ')}`);
  const sizes: SuiteSizes = { ...DEFAULT_SUITE_SIZES, ...Object.fromEntries(Object.entries(opts.sizes ?? {}).filter(([, v]) => v !== undefined)) };
  const experiments = SUITE_ORDER.filter((e) => (opts.experiments ?? SUITE_ORDER).includes(e));
  if (experiments.includes('blocking') && !experiments.includes('keys')) throw new KvlensUsageError('the suite\'s blocking step reads the key variance of its keys step: run keys too');
  const say = opts.onProgress ?? (() => undefined);
  const modelName = opts.modelName ?? spec.name;
  const timings = new Timings();

  ensureDir(out);
  for (const sub of ['data', 'stores', 'run']) rmSync(join(out, sub), { recursive: true, force: true });
  const paths = { model: join(out, 'model'), runDir: join(out, 'run'), stores: join(out, 'stores'), data: {} as Record<string, string> };
  say(`writing the tiny ${family} checkpoint to ${paths.model}`);
  rmSync(paths.model, { recursive: true, force: true }); // another family's files must not linger
  await timings.time('model', () => spec.write(paths.model));
  const datasets = [...new Set(experiments.flatMap((e) => NEEDS[e]))];
  say(`generating synthetic ${datasets.join(', ')}`);
  await timings.time('data', async () => {
    for (const d of datasets) {
      paths.data[d] = join(out, 'data', d);
      await generateSynthetic(d, paths.data[d], { seed, n: sizes[d as keyof SuiteSizes] });
    }
  });

  const configs = suiteConfigs(paths, seed, sizes, opts.threads, experiments);
  ensureDir(paths.runDir); // the first step need not be flow (keys writes its state file there)
  const outcomes: Array<{ name: ExperimentName; outcome: Outcome }> = [];
  const seconds: Record<string, number> = {};
  for (const name of experiments) {
    say(`== ${name}`);
    const t0 = performance.now();
    const outcome = await runExperimentResults(configs[name]!, modelName, timings, (m) => say(`${name}: ${m}`));
    seconds[name] = (performance.now() - t0) / 1000;
    outcomes.push({ name, outcome });
  }

  const resolved = { family, seed, sizes, experiments: Object.fromEntries(experiments.map((e) => [e, configs[e]])) };
  const manifest = (extra: Record<string, number>) => buildManifest({
    experiment: `suite: ${experiments.join(' + ')} on the embedded tiny ${family} and synthetic data`,
    modelDir: paths.model, modelName, datasets: mergeDatasets(outcomes.flatMap((o) => o.outcome.datasets)),
    prompts: Object.fromEntries(outcomes.flatMap((o) => Object.entries(o.outcome.prompts).map(([k, v]) => [`${o.name}.${k}`, v]))),
    seeds: [seed], dtype: 'float32 (model and stored features)', device: 'cpu', timings: withSeconds(timings, { ...seconds, ...extra }),
    config: { sha256: createHash('sha256').update(JSON.stringify(resolved)).digest('hex'), resolved },
    notes: outcomes.map((o) => `[${o.name}] ${o.outcome.notes.join(' ')}`).join(' '),
  });
  await writeRun.manifest(paths.runDir, manifest({}));
  say('building the report');
  const t0 = performance.now();
  const report = await buildReport(paths.runDir, { out: join(paths.runDir, 'report', 'report.html') });
  seconds.report = (performance.now() - t0) / 1000;
  const final = manifest({ report: seconds.report });
  await writeRun.manifest(paths.runDir, final);
  return { runDir: paths.runDir, manifest: final, report, seconds: { model: timings.steps.model, data: timings.steps.data, ...seconds } };
}

/** One entry per (name, path): flow and prefix both read pascal5i, blocking and underutil both read BLINK. */
function mergeDatasets(list: readonly DatasetEntry[]): DatasetEntry[] {
  const seen = new Map<string, DatasetEntry>();
  for (const d of list) {
    const k = `${d.name}\u0000${d.path}`;
    if (!seen.has(k)) seen.set(k, d);
  }
  return [...seen.values()];
}

/** The step timings plus each experiment's wall-clock seconds as "experiment.<name>". */
function withSeconds(t: Timings, seconds: Record<string, number>): Timings {
  const merged = new Timings();
  Object.assign(merged.steps, t.steps, Object.fromEntries(Object.entries(seconds).map(([k, v]) => [`experiment.${k}`, v])));
  return merged;
}
