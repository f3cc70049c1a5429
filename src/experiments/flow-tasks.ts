// Job builders of the layer-wise flow for the zero-shot text-query tasks (semseg: ImageNet-S, refseg: RefCOCO) and
// video label propagation (DAVIS): ground truth tied to the store, the text vectors computed once for every tap, one
// job per tap (see flow.ts).
import { join } from 'node:path';
import type { ProbeJob } from '../probes/parallel.js';
import { textQueryProtocol as scoringProtocol } from '../probes/text-query-seg.js';
import type { FeatureStore } from '../store/index.js';
import { KvlensInputError } from '../util/errors.js';
import { JOBS_MODULE, type ProbeFlowConfig } from './flow-config.js';
import type { PropagationTapArgs, RefSegTapArgs, SemSegTapArgs, TapJobBase } from './flow-jobs.js';
import { loadRefTruth, loadSemSegTruth } from './samples-text.js';
import { loadVideoTruth } from './samples-video.js';
import { textQueryContext, textQueryProtocol, type TextQueryProvider } from './text-queries.js';

export interface BuiltJobs {
  readonly jobs: ProbeJob[];
  readonly missing: string[];
  readonly protocol: Record<string, unknown>;
}

type TapSel = readonly { tap: string; layer: number | null }[];
type Base = Omit<TapJobBase, 'tap'>;

/** Per tap, the vectors of the given texts as a plain record (structured-cloned into the worker). */
function vectorsByTap(all: Map<string, Map<string, Float32Array>>, tap: string, texts: Iterable<string>): Record<string, Float32Array> {
  const byText = all.get(tap);
  const out: Record<string, Float32Array> = {};
  for (const t of texts) {
    const v = byText?.get(t);
    if (!v) throw new KvlensInputError(`the text-query provider returned no vector for ${JSON.stringify(t)}`, tap);
    out[t] = v;
  }
  return out;
}

export async function textQueryJobs(cfg: ProbeFlowConfig, store: FeatureStore, taps: TapSel, base: Base, provider: TextQueryProvider): Promise<BuiltJobs> {
  const scoring = { similarity: cfg.similarity, maskRule: cfg.maskRule, threshold: cfg.threshold, fraction: cfg.fraction };
  const text = textQueryProtocol(textQueryContext(store.identity.prompt.template));
  const tapNames = taps.map((t) => t.tap);
  if (cfg.task === 'semseg') {
    const truth = await loadSemSegTruth(store, cfg.data, { dataset: cfg.dataset, split: cfg.split, variant: cfg.variant, classNames: cfg.classNames, textTemplate: cfg.textTemplate, queries: cfg.queries });
    if (truth.items.length === 0) throw new KvlensInputError(`no ImageNet-S image is in the store (${truth.missing.length} images missing)`, cfg.data);
    const texts = [...new Set(truth.classTexts.values())];
    const vectors = await provider(texts, tapNames);
    const classTexts = [...truth.classTexts];
    const jobs = taps.map((t) => ({
      module: JOBS_MODULE(), fn: 'semSegTapJob',
      args: { ...base, tap: t.tap, images: truth.items, classTexts, vectors: vectorsByTap(vectors, t.tap, texts), config: { ...scoring, numClasses: truth.numClasses } } satisfies SemSegTapArgs,
    }));
    return {
      jobs, missing: truth.missing,
      protocol: {
        ...text, variant: cfg.variant, split: cfg.split ?? 'validation', images: truth.items.length, classNames: truth.namesFile, textTemplate: cfg.textTemplate,
        queries: cfg.queries === 'present' ? 'per image, the classes of its own mask (which class is given; where is probed)' : `every one of the ${truth.numClasses} classes on every image`,
        distinctTexts: texts.length, scoring: scoringProtocol({ ...scoring }),
      },
    };
  }
  const truth = await loadRefTruth(store, cfg.data, { dataset: cfg.dataset, split: cfg.split, subset: cfg.subset });
  if (truth.items.length === 0) throw new KvlensInputError(`no RefCOCO image of the split is in the store (${truth.missing.length} images missing)`, cfg.data);
  const texts = [...new Set(truth.items.map((r) => r.text))];
  const vectors = await provider(texts, tapNames);
  const jobs = taps.map((t) => ({
    module: JOBS_MODULE(), fn: 'refSegTapJob',
    args: { ...base, tap: t.tap, refs: truth.items, vectors: vectorsByTap(vectors, t.tap, texts), config: scoring } satisfies RefSegTapArgs,
  }));
  return {
    jobs, missing: truth.missing,
    protocol: {
      ...text, subset: cfg.subset ?? 'refcoco', split: cfg.split ?? 'val', expressions: truth.items.length, objects: new Set(truth.items.map((r) => r.refId)).size,
      expressionText: 'the sentence\'s "sent" field (refer\'s normalised lower-case form)', distinctTexts: texts.length, scoring: scoringProtocol({ ...scoring }),
    },
  };
}

export async function propagationJobs(cfg: ProbeFlowConfig, store: FeatureStore, taps: TapSel, base: Base): Promise<BuiltJobs> {
  const truth = await loadVideoTruth(store, cfg.data, { dataset: cfg.dataset, split: cfg.split });
  if (truth.items.length === 0) throw new KvlensInputError(`no DAVIS sequence has all its frames in the store (${truth.missing.length} frames missing)`, cfg.data);
  const config = { contextFrames: cfg.contextFrames, temperature: cfg.temperature, topK: cfg.topK, radius: cfg.radius };
  const jobs = taps.map((t) => ({
    module: JOBS_MODULE(), fn: 'propagationTapJob',
    args: { ...base, tap: t.tap, videos: truth.items, config, ...(cfg.predictionsDir ? { outputDir: join(cfg.predictionsDir, t.tap) } : {}) } satisfies PropagationTapArgs,
  }));
  return {
    jobs, missing: truth.missing,
    protocol: {
      split: cfg.split ?? 'val', videos: truth.items.length, frames: truth.items.reduce((a, v) => a + v.frames.length, 0),
      skipRule: 'a sequence with any frame missing from the store is skipped whole', predictions: cfg.predictionsDir ? `${cfg.predictionsDir}/<tap>/<video>/<frame>.png` : 'not written',
    },
  };
}
