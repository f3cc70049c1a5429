// Worker-side jobs of the layer-wise flow: one job probes one tap of a store against ground truth passed in its args.
// Each job opens the store itself (file handles cannot cross threads) and derives all randomness from its args, so the
// rows are identical for any thread count.
import { readFileSync } from 'node:fs';
import { FeatureStore } from '../store/index.js';
import { meanOverFolds, runFewShotProbe, type FewShotConfig, type FewShotSample } from '../probes/fewshot-seg.js';
import { runCorrespondenceProbe, type CorrespondenceConfig, type CorrespondencePair } from '../probes/correspondence.js';
import type { ProbeResult } from '../probes/results.js';
import { runCosegProbe, type CosegConfig, type CosegImage } from '../probes/coseg.js';
import { runReferringSegProbe, runSemanticSegProbe, type ReferringSample, type SemanticSegConfig, type SemanticSegSample, type TextQueryConfig } from '../probes/text-query-seg.js';
import { runPropagationProbe, type PropagationConfig, type VideoSample } from '../probes/propagation.js';
import { decodeLabelPng } from '../data/png.js';
import type { CosegTruth, PairTruth, SegTruth } from './samples.js';
import type { RefTruth, SemSegTruth } from './samples-text.js';
import type { VideoTruth } from './samples-video.js';

export interface TapJobBase {
  readonly roots: string[];
  readonly tap: string;
  readonly view?: string;
}

export interface FewShotTapArgs extends TapJobBase {
  /** One run per fold (the paper: the four folds, averaged), or one pooled run. */
  readonly folds: { fold: number | 'pooled'; truth: SegTruth[] }[];
  /** episodes: per fold, or 'per-entry' (each fold's entry count). */
  readonly config: Omit<Partial<FewShotConfig>, 'episodes'> & { episodes: number | 'per-entry' };
}

export interface CorrespondenceTapArgs extends TapJobBase {
  readonly pairs: PairTruth[];
  readonly config: Partial<CorrespondenceConfig>;
}

/** Few-shot segmentation of one tap: each fold's episodes over its (image, class) entries, the folds averaged. */
export async function fewShotTapJob(args: FewShotTapArgs): Promise<ProbeResult> {
  const store = FeatureStore.open(args.roots);
  try {
    const results: { fold: number | 'pooled'; result: ProbeResult }[] = [];
    for (const f of args.folds) {
      const labelsOf = new Map(f.truth.map((t) => [t.storeId, t.labels]));
      const load = (id: string): FewShotSample => ({ features: store.read(id, args.tap, { view: args.view }), labels: labelsOf.get(id)! });
      const items = f.truth.map((t) => ({ imageId: t.storeId, classId: t.classValue }));
      const episodes = args.config.episodes === 'per-entry' ? items.length : args.config.episodes;
      results.push({ fold: f.fold, result: await runFewShotProbe(items, load, { ...args.config, episodes }) });
    }
    return meanOverFolds(results);
  } finally {
    store.close();
  }
}

export interface CosegTapArgs extends TapJobBase {
  readonly images: CosegTruth[];
  readonly config: Partial<CosegConfig>;
}

/** Co-segmentation of one tap: every group clustered on its own, all images scored together. */
export async function cosegTapJob(args: CosegTapArgs): Promise<ProbeResult> {
  const store = FeatureStore.open(args.roots);
  try {
    const groups = new Map<string, CosegImage[]>();
    for (const im of args.images) {
      const list = groups.get(im.group) ?? groups.set(im.group, []).get(im.group)!;
      list.push({ features: store.read(im.storeId, args.tap, { view: args.view }), labels: im.labels });
    }
    return runCosegProbe([...groups.values()], args.config);
  } finally {
    store.close();
  }
}

/** Keypoint transfer of one tap over every pair. */
export async function correspondenceTapJob(args: CorrespondenceTapArgs): Promise<ProbeResult> {
  const store = FeatureStore.open(args.roots);
  try {
    function* pairs(): Generator<CorrespondencePair> {
      // each grid with the pixel extent recorded at extraction (27 x 14 = 378 of 384 px): points map to tokens and
      // token centres back to pixels over what the tokens actually read; old stores have none (the whole image)
      const read = (id: string) => {
        const g = store.read(id, args.tap, { view: args.view });
        const extent = store.extent(id, args.tap, args.view);
        return extent ? { ...g, extent } : g;
      };
      for (const p of args.pairs) {
        yield {
          source: read(p.source),
          target: read(p.target),
          sourceSize: p.sourceSize, targetSize: p.targetSize,
          sourceKeypoints: p.sourceKeypoints, targetKeypoints: p.targetKeypoints,
          targetBBox: p.targetBBox, category: p.category,
        };
      }
    }
    return await runCorrespondenceProbe(pairs(), args.config);
  } finally {
    store.close();
  }
}

export interface SemSegTapArgs extends TapJobBase {
  readonly images: SemSegTruth[];
  /** Query text per class id. */
  readonly classTexts: [number, string][];
  /** This tap's vector per text. [D] each */
  readonly vectors: Record<string, Float32Array>;
  readonly config: Partial<SemanticSegConfig> & { numClasses: number };
}

/** ImageNet-S semantic segmentation of one tap: every image scored against its classes' text vectors. */
export async function semSegTapJob(args: SemSegTapArgs): Promise<ProbeResult> {
  const store = FeatureStore.open(args.roots);
  try {
    const texts = new Map(args.classTexts);
    function* samples(): Generator<SemanticSegSample> {
      for (const im of args.images) {
        yield {
          features: store.read(im.storeId, args.tap, { view: args.view }),
          labels: im.labels,
          queries: im.classIds.map((c) => ({ classId: c, vector: args.vectors[texts.get(c)!] })),
        };
      }
    }
    return await runSemanticSegProbe(samples(), args.config);
  } finally {
    store.close();
  }
}

export interface RefSegTapArgs extends TapJobBase {
  readonly refs: RefTruth[];
  readonly vectors: Record<string, Float32Array>;
  readonly config: Partial<TextQueryConfig>;
}

/** RefCOCO referring segmentation of one tap: one prediction per (object, sentence). */
export async function refSegTapJob(args: RefSegTapArgs): Promise<ProbeResult> {
  const store = FeatureStore.open(args.roots);
  try {
    function* samples(): Generator<ReferringSample> {
      for (const r of args.refs) yield { features: store.read(r.storeId, args.tap, { view: args.view }), labels: r.labels, query: args.vectors[r.text] };
    }
    return await runReferringSegProbe(samples(), args.config);
  } finally {
    store.close();
  }
}

export interface PropagationTapArgs extends TapJobBase {
  readonly videos: VideoTruth[];
  readonly config: Partial<PropagationConfig>;
  /** Indexed PNGs go to <outputDir>/<video>/<frame>.png when set. */
  readonly outputDir?: string;
}

/** DAVIS label propagation of one tap: frames streamed from the store, annotations read lazily. */
export async function propagationTapJob(args: PropagationTapArgs): Promise<ProbeResult> {
  const store = FeatureStore.open(args.roots);
  try {
    function* videos(): Generator<VideoSample> {
      for (const v of args.videos) {
        yield {
          name: v.name,
          frameNames: v.frameNames,
          frames: (function* () { for (const id of v.frames) yield store.read(id, args.tap, { view: args.view }); })(),
          annotations: (function* () { for (const p of v.annotations) yield decodeLabelPng(readFileSync(p), p); })(),
        };
      }
    }
    const { objects: _objects, ...result } = await runPropagationProbe(videos(), { ...args.config, outputDir: args.outputDir });
    return result;
  } finally {
    store.close();
  }
}
