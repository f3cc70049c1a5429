// The layer-wise probe flow: one probe task, run on every selected tap (layer) of a feature store against a dataset's
// ground truth, giving the tidy result rows (task, model, tap, layer, metric, value, n, seed).
//
//   fewshot-seg     Pascal-5i layout: episodes of k-shot logistic-regression segmentation (src/probes/fewshot-seg.ts)
//   correspondence  SPair-71k layout: nearest-neighbour keypoint transfer, PCK (src/probes/correspondence.ts)
//   coseg           MSRC layout: k-means co-segmentation per group, Jaccard / precision (src/probes/coseg.ts)
//   semseg          ImageNet-S layout: class-name text query vs image tokens, mIoU (src/probes/text-query-seg.ts)
//   refseg          RefCOCO (refer) layout: referring-expression text query vs image tokens, mIoU / oIoU (same file)
//   propagation     DAVIS 2017 layout: label propagation through a video's frames, J&F (src/probes/propagation.ts)
//   bddseg          BDD10K layout: scenes selected by BDD's attributes, 19-class linear probe, mIoU (src/probes/linear-seg.ts)
//
// The text-query tasks need the text's vector at every probed tap: src/experiments/text-queries.ts computes them once
// with the store's model (cached next to the results) before the per-tap jobs start.
//
// Taps are probed in parallel worker threads (one job per tap); every job's randomness comes from the seed only, so the
// rows do not depend on the thread count.
import { basename } from 'node:path';
import { z } from 'zod';
import { type DatasetName } from '../data/index.js';
import { PASCAL5I_FOLDS } from '../probes/fewshot-seg.js';
import { FeatureStore } from '../store/index.js';
import { runJobs, type ProbeJob } from '../probes/parallel.js';
import { toRows, type ProbeResult, type ResultRow } from '../probes/results.js';
import { layerPattern, selectLayers, tapAtLayer, tapFamily, tapLayer } from '../taps/names.js';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import type { CorrespondenceTapArgs, CosegTapArgs, FewShotTapArgs } from './flow-jobs.js';
import { loadCosegTruth, loadPairTruth, loadSegTruth, type SegTruth } from './samples.js';
import { propagationJobs, textQueryJobs } from './flow-tasks.js';
import { JOBS_MODULE, parseProbeFlowConfig, type ProbeFlowConfig, type ProbeTask, type ProbeFlowConfigSchema } from './flow-config.js';
import { bddSegJobs } from './flow-bdd.js';
import { modelTextQueries, type TextQueryProvider } from './text-queries.js';

export { JOBS_MODULE, parseProbeFlowConfig, PROBE_DATASET_FIELDS, PROBE_TASKS, ProbeFlowConfigSchema, type ProbeFlowConfig, type ProbeTask } from './flow-config.js';

export interface ProbeFlowResult {
  readonly rows: ResultRow[];
  /** Protocol per tap plus the flow's own choices. */
  readonly protocol: Record<string, unknown>;
  /** Dataset images that are not in the store (skipped). */
  readonly missing: string[];
  readonly taps: { tap: string; layer: number | null }[];
}

/** Concrete store taps matching the patterns; "*" in a pattern takes the `layers` selection. Order: pattern, then layer. */
export function selectStoreTaps(storeTaps: readonly string[], patterns: readonly string[], layers: string): { tap: string; layer: number | null }[] {
  const out: { tap: string; layer: number | null }[] = [];
  const add = (tap: string) => {
    if (!out.some((t) => t.tap === tap)) out.push({ tap, layer: tapLayer(tap) });
  };
  for (const p of patterns) {
    if (storeTaps.includes(p)) { add(p); continue; }
    const lp = layerPattern(p);
    if (!lp) throw new KvlensUsageError(`tap "${p}" is not in the store; it holds [${storeTaps.join(', ')}]`);
    const family = storeTaps.filter((t) => tapFamily(t) === lp.family).map((t) => ({ tap: t, layer: tapLayer(t)! }));
    if (family.length === 0) throw new KvlensUsageError(`no store tap matches "${p}"; the store holds [${storeTaps.join(', ')}]`);
    const stored = new Set(family.map((f) => f.layer));
    const top = Math.max(...stored) + 1;
    const spec = lp.selection === '*' ? layers : lp.selection;
    const wanted = spec === '*' || spec === 'all' ? [...stored].sort((a, b) => a - b) : selectLayers(spec, top, p);
    for (const l of wanted) {
      if (!stored.has(l)) throw new KvlensUsageError(`"${p}": layer ${l} is not in the store (stored layers: ${[...stored].sort((a, b) => a - b).join(', ')})`);
      add(tapAtLayer(lp.family, l));
    }
  }
  return out;
}

/** Pascal-5i: per fold (the paper's 'all' = each of the four folds), the usable entries, one job per tap over the folds. */
async function fewShotFoldJobs(cfg: ProbeFlowConfig, store: FeatureStore, taps: readonly { tap: string }[], base: { roots: string[]; view?: string }): Promise<{ jobs: ProbeJob[]; missing: string[]; protocol: Record<string, unknown> }> {
  const runs: (number | 'pooled')[] = cfg.fold === 'all' ? [...PASCAL5I_FOLDS] : [cfg.fold];
  const folds: { fold: number | 'pooled'; truth: SegTruth[] }[] = [];
  const missing = new Set<string>();
  const perFold: Record<string, unknown> = {};
  for (const fold of runs) {
    const truth = await loadSegTruth(store, cfg.data, { fold, split: cfg.split, dataset: cfg.dataset as DatasetName | undefined });
    truth.missing.forEach((m) => missing.add(m));
    const items = usableSegItems(truth.items, cfg.shots);
    if (items.length === 0) {
      throw new KvlensInputError(`fold ${fold}: no Pascal-5i class has ${cfg.shots + 1} images in the store (found ${truth.items.length} (image, class) entries, ${truth.missing.length} images not in the store); use fewer shots, or fold 'pooled' for small sets`, cfg.data);
    }
    folds.push({ fold, truth: items });
    perFold[String(fold)] = { entries: items.length, droppedEntries: truth.items.length - items.length, episodes: cfg.episodes === 'per-entry' ? items.length : cfg.episodes };
  }
  const jobs = taps.map((t) => ({ module: JOBS_MODULE(), fn: 'fewShotTapJob', args: { ...base, tap: t.tap, folds, config: { shots: cfg.shots, episodes: cfg.episodes, seed: cfg.seed } } satisfies FewShotTapArgs }));
  return {
    jobs, missing: [...missing],
    protocol: {
      fold: cfg.fold, split: cfg.split ?? (cfg.fold === 'pooled' ? 'val+trn' : 'val'), shots: cfg.shots,
      episodesPerFold: cfg.episodes, folds: perFold, dropRule: `classes with fewer than ${cfg.shots + 1} images in a fold's list are left out`,
      aggregation: runs.length > 1 ? 'mIoU / FB-IoU: unweighted mean over the folds (each fold its own seeded episodes)' : 'one run',
    },
  };
}

/** Keep the (image, class) entries whose class has at least shots + 1 distinct images (a query and its supports). */
export function usableSegItems(items: readonly SegTruth[], shots: number): SegTruth[] {
  const perClass = new Map<number, Set<string>>();
  for (const it of items) (perClass.get(it.classValue) ?? perClass.set(it.classValue, new Set()).get(it.classValue)!).add(it.storeId);
  return items.filter((it) => perClass.get(it.classValue)!.size > shots);
}

export const DEFAULT_DATASET: Record<ProbeTask, DatasetName> = {
  'fewshot-seg': 'pascal5i', correspondence: 'spair', coseg: 'msrc', semseg: 'imagenet-s', refseg: 'refcoco', propagation: 'davis', bddseg: 'bdd10k',
};

export interface ProbeFlowDeps {
  /** Text-query vectors (default: computed with the store's model, src/experiments/text-queries.ts). */
  readonly textQueries?: TextQueryProvider;
}

/** Run one probe task over the selected taps of a store. */
export async function runProbeFlow(input: z.input<typeof ProbeFlowConfigSchema>, deps: ProbeFlowDeps = {}): Promise<ProbeFlowResult> {
  const cfg = parseProbeFlowConfig(input);
  const store = FeatureStore.open(cfg.store);
  let taps: { tap: string; layer: number | null }[];
  let jobs: ProbeJob[];
  let missing: string[];
  const flowProtocol: Record<string, unknown> = { task: cfg.task, dataset: cfg.dataset ?? DEFAULT_DATASET[cfg.task], view: cfg.view ?? 'each tap\'s first view (base)' };
  try {
    taps = selectStoreTaps(store.taps, cfg.taps, cfg.layers);
    const base = { roots: [...store.roots], view: cfg.view };
    if (cfg.task === 'fewshot-seg') {
      const built = await fewShotFoldJobs(cfg, store, taps, base);
      ({ jobs, missing } = built);
      Object.assign(flowProtocol, built.protocol);
    } else if (cfg.task === 'coseg') {
      const truth = await loadCosegTruth(store, cfg.data, { dataset: cfg.dataset as DatasetName | undefined, subset: cfg.subset });
      missing = truth.missing;
      if (truth.items.length === 0) throw new KvlensInputError(`no MSRC image is in the store (${truth.missing.length} images missing)`, cfg.data);
      Object.assign(flowProtocol, { groups: new Set(truth.items.map((i) => i.group)).size, images: truth.items.length });
      jobs = taps.map((t) => ({ module: JOBS_MODULE(), fn: 'cosegTapJob', args: { ...base, tap: t.tap, images: truth.items, config: { seed: cfg.seed } } satisfies CosegTapArgs }));
    } else if (cfg.task === 'semseg' || cfg.task === 'refseg' || cfg.task === 'propagation' || cfg.task === 'bddseg') {
      const built = cfg.task === 'propagation'
        ? await propagationJobs(cfg, store, taps, base)
        : cfg.task === 'bddseg'
        ? await bddSegJobs(cfg, store, taps, base)
        : await textQueryJobs(cfg, store, taps, base, deps.textQueries ?? modelTextQueries(store.identity, { modelDir: cfg.modelDir, cachePath: cfg.queryCache }));
      ({ jobs, missing } = built);
      Object.assign(flowProtocol, built.protocol);
    } else {
      const truth = await loadPairTruth(store, cfg.data, { split: cfg.split, dataset: cfg.dataset as DatasetName | undefined });
      missing = truth.missing;
      if (truth.items.length === 0) throw new KvlensInputError(`no SPair pair has both images in the store (${truth.missing.length} images missing)`, cfg.data);
      Object.assign(flowProtocol, { split: cfg.split ?? 'test', pairs: truth.items.length });
      jobs = taps.map((t) => ({ module: JOBS_MODULE(), fn: 'correspondenceTapJob', args: { ...base, tap: t.tap, pairs: truth.items, config: { alphas: cfg.alphas } } satisfies CorrespondenceTapArgs }));
    }
  } finally {
    store.close();
  }
  const model = cfg.model ?? (basename(store.identity.model.path) || 'model');
  const results = await runJobs<ProbeResult<object>>(jobs, cfg.threads);
  const rows: ResultRow[] = [];
  const perTap: Record<string, unknown> = {};
  results.forEach((r, i) => {
    rows.push(...toRows(r, { model, tap: taps[i].tap, layer: taps[i].layer, seed: cfg.seed }));
    perTap[taps[i].tap] = r.protocol;
  });
  return { rows, protocol: { flow: flowProtocol, probe: results[0]?.protocol ?? {}, perTapIdentical: new Set(Object.values(perTap).map((p) => JSON.stringify(p))).size <= 1 }, missing, taps };
}
