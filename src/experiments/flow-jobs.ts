// Worker-side jobs of the layer-wise flow: one job probes one tap of a store against ground truth passed in its args.
// Each job opens the store itself (file handles cannot cross threads) and derives all randomness from its args, so the
// rows are identical for any thread count.
import { FeatureStore } from '../store/index.js';
import { runFewShotProbe, type FewShotConfig, type FewShotSample } from '../probes/fewshot-seg.js';
import { runCorrespondenceProbe, type CorrespondenceConfig, type CorrespondencePair } from '../probes/correspondence.js';
import type { ProbeResult } from '../probes/results.js';
import { runCosegProbe, type CosegConfig, type CosegImage } from '../probes/coseg.js';
import type { CosegTruth, PairTruth, SegTruth } from './samples.js';

export interface TapJobBase {
  readonly roots: string[];
  readonly tap: string;
  readonly view?: string;
}

export interface FewShotTapArgs extends TapJobBase {
  readonly truth: SegTruth[];
  readonly config: Partial<FewShotConfig>;
}

export interface CorrespondenceTapArgs extends TapJobBase {
  readonly pairs: PairTruth[];
  readonly config: Partial<CorrespondenceConfig>;
}

/** Few-shot segmentation of one tap: episodes over the (image, class) entries, features read from the store. */
export async function fewShotTapJob(args: FewShotTapArgs): Promise<ProbeResult> {
  const store = FeatureStore.open(args.roots);
  try {
    const labelsOf = new Map(args.truth.map((t) => [t.storeId, t.labels]));
    const load = (id: string): FewShotSample => ({ features: store.read(id, args.tap, { view: args.view }), labels: labelsOf.get(id)! });
    const items = args.truth.map((t) => ({ imageId: t.storeId, classId: t.classValue }));
    return await runFewShotProbe(items, load, args.config);
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
      for (const p of args.pairs) {
        yield {
          source: store.read(p.source, args.tap, { view: args.view }),
          target: store.read(p.target, args.tap, { view: args.view }),
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
