// The layer-wise flow's BDD10K task (bddseg, paper Table 4 [SEED]): the scenes BDD's own frame attributes select (default
// night + highway) in a training split and a scored split, both tied to the store's images; per tap, the 19-class linear
// probe (src/probes/linear-seg.ts) is fitted on the training scenes and scored (mIoU) on the others. Masks are decoded
// inside the worker, one image at a time, so no label map crosses threads.
import { readFileSync } from 'node:fs';
import { BDD_CLASSES, listSelectedBdd10k, type Bdd10kSelectionReport } from '../data/loaders/bdd10k.js';
import { decodeLabelPng } from '../data/png.js';
import type { ProbeJob } from '../probes/parallel.js';
import { runLinearSegProbe, linearSegProtocol, LinearSegConfigSchema, type LabelledGrid, type LinearSegConfig } from '../probes/linear-seg.js';
import type { ProbeResult } from '../probes/results.js';
import { FeatureStore } from '../store/index.js';
import { KvlensInputError } from '../util/errors.js';
import type { ProbeFlowConfig } from './flow-config.js';
import type { TapJobBase } from './flow-jobs.js';
import { StoreImageResolver } from './samples.js';

export interface BddImageTruth { readonly storeId: string; readonly maskPath: string }

export interface BddSegTapArgs extends TapJobBase {
  readonly train: BddImageTruth[];
  readonly test: BddImageTruth[];
  readonly config: Partial<LinearSegConfig>;
}

/** This module (the worker imports it for bddSegTapJob). */
const SELF = (): string => import.meta.url;

/** One tap: fit on the training scenes, score the test scenes. */
export async function bddSegTapJob(args: BddSegTapArgs): Promise<ProbeResult> {
  const store = FeatureStore.open(args.roots);
  try {
    function* images(list: readonly BddImageTruth[]): Generator<LabelledGrid> {
      for (const im of list) yield { features: store.read(im.storeId, args.tap, { view: args.view }), labels: decodeLabelPng(readFileSync(im.maskPath), im.maskPath) };
    }
    return { ...(await runLinearSegProbe(images(args.train), images(args.test), args.config)), task: 'bdd10k-linearseg' };
  } finally {
    store.close();
  }
}

async function selectedInStore(cfg: ProbeFlowConfig, store: FeatureStore, split: string): Promise<{ items: BddImageTruth[]; missing: string[]; report: Bdd10kSelectionReport }> {
  const { entries, report } = await listSelectedBdd10k(cfg.data, split, cfg.select, cfg.attributeFiles);
  const resolver = new StoreImageResolver(store, cfg.data);
  const items: BddImageTruth[] = [];
  const missing: string[] = [];
  for (const e of entries) {
    const storeId = resolver.resolve({ kind: 'path', path: e.imagePath });
    if (storeId) items.push({ storeId, maskPath: e.maskPath }); else missing.push(e.imagePath);
  }
  return { items, missing, report };
}

export async function bddSegJobs(cfg: ProbeFlowConfig, store: FeatureStore, taps: readonly { tap: string }[], base: Omit<TapJobBase, 'tap'>): Promise<{ jobs: ProbeJob[]; missing: string[]; protocol: Record<string, unknown> }> {
  const name = cfg.dataset ?? 'bdd10k';
  if (name !== 'bdd10k') throw new KvlensInputError(`bddseg reads the BDD10K layout; dataset "${name}" is not supported`, cfg.data);
  const testSplit = cfg.split ?? 'val';
  if (testSplit === cfg.trainSplit) throw new KvlensInputError(`trainSplit and split are both "${testSplit}": the probe would be scored on its training scenes`, cfg.data);
  const train = await selectedInStore(cfg, store, cfg.trainSplit);
  const test = await selectedInStore(cfg, store, testSplit);
  for (const [what, s] of [['training', train], ['scored', test]] as const) {
    if (s.items.length === 0) {
      throw new KvlensInputError(`no ${what} image (split ${s.report.split}) matches ${JSON.stringify(cfg.select)} and is in the store: ${s.report.listed} listed, ${s.report.withoutAttributes} without attributes, ${s.report.selected.length} selected, ${s.missing.length} not in the store`, cfg.data);
    }
  }
  const config: Partial<LinearSegConfig> = { numClasses: BDD_CLASSES.length, classNames: [...BDD_CLASSES], ignoreLabel: 255, maxTrainTokens: cfg.maxTrainTokens, seed: cfg.seed };
  const jobs = taps.map((t) => ({ module: SELF(), fn: 'bddSegTapJob', args: { ...base, tap: t.tap, train: train.items, test: test.items, config } satisfies BddSegTapArgs }));
  const report = (s: typeof train) => ({ split: s.report.split, listed: s.report.listed, withoutAttributes: s.report.withoutAttributes, selected: s.report.selected.length, inStore: s.items.length, images: s.items.map((i) => i.storeId) });
  return {
    jobs, missing: [...train.missing, ...test.missing],
    protocol: {
      benchmark: 'BDD10K semantic segmentation, 19 train-id classes (road ... bicycle), 255 ignored',
      selection: { by: "BDD's frame attributes from its Scalabel label files", select: cfg.select, attributeFiles: train.report.attributeFiles },
      train: report(train), test: report(test),
      probe: linearSegProtocol(LinearSegConfigSchema.parse(config)),
    },
  };
}
