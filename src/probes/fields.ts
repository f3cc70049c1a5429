// The probe fields of `kvlens probe` and of a `kvlens run` experiment's tasks, derived from each probe's own schema so a
// default lives in one place (the probe's schema) and the flow, prefix and probe paths cannot drift from it:
//   Pascal-5i: shots 5 and 1,000 episodes per fold (HSNet), fold 'all' = the four folds run separately and averaged;
//   SPair: PCK alphas; ImageNet-S / RefCOCO: similarity and mask rule; DAVIS: the DINO propagation settings;
//   BDD10K: the scene selection (BDD's own attributes) and the linear probe's settings.
import { z } from 'zod';
import { DATASET_NAMES } from '../data/types.js';
import { BDD_ATTRIBUTE_VALUES } from '../data/loaders/bdd10k-attributes.js';
import { CorrespondenceConfigSchema } from './correspondence.js';
import { DEFAULT_FOLD, FewShotConfigSchema, FoldSchema } from './fewshot-seg.js';
import { LinearSegConfigSchema } from './linear-seg.js';
import { PropagationConfigSchema } from './propagation.js';
import { TextQueryConfigSchema } from './text-query-seg.js';

/** Every probe's defaults, as its schema resolves them (the docs table and the preset test read these). */
export const PROBE_DEFAULTS = {
  fewshot: FewShotConfigSchema.parse({}),
  correspondence: CorrespondenceConfigSchema.parse({}),
  textQuery: TextQueryConfigSchema.parse({}),
  propagation: PropagationConfigSchema.parse({}),
  linearSeg: LinearSegConfigSchema.parse({}),
  fold: DEFAULT_FOLD,
} as const;

const attributeValues = <K extends keyof typeof BDD_ATTRIBUTE_VALUES>(k: K) =>
  z.array(z.enum(BDD_ATTRIBUTE_VALUES[k] as unknown as [string, ...string[]])).min(1).optional();

/** BDD frame-attribute selection (src/data/loaders/bdd10k-attributes.ts); every listed attribute must match. */
export const BddSelectSchema = z.object({
  timeofday: attributeValues('timeofday'),
  scene: attributeValues('scene'),
  weather: attributeValues('weather'),
}).strict();

/** Which samples of the dataset a probe uses, and how: shared by `kvlens probe` and the tasks of a `kvlens run` experiment. */
export const PROBE_DATASET_FIELDS = {
  /** Layout of `data`; default per task (pascal5i, spair, msrc, imagenet-s, refcoco, davis, bdd10k). */
  dataset: z.enum(DATASET_NAMES).optional(),
  /** Pascal-5i: 'all' (the paper: four folds, each its own episodes, mean of the fold mIoUs), a fold 0..3, or 'pooled'. */
  fold: FoldSchema.default(PROBE_DEFAULTS.fold),
  split: z.string().optional(),
  /** Loader subset (MSRC: comma-separated group names). */
  subset: z.string().optional(),
  /** Pascal-5i support images per episode. */
  shots: FewShotConfigSchema.shape.shots,
  /** Pascal-5i episodes per fold (HSNet: 1,000), or 'per-entry': every (image, class) entry is the query once. */
  episodes: z.union([z.number().int().positive(), z.literal('per-entry')]).default(PROBE_DEFAULTS.fewshot.episodes),
  alphas: CorrespondenceConfigSchema.shape.alphas,
  // ---- BDD10K (task bddseg) ----
  /** Scene selection by BDD's frame attributes; default the paper's night + highway subset. */
  select: BddSelectSchema.default({ timeofday: ['night'], scene: ['highway'] }),
  /** Scalabel label files with frame attributes (default: found under the dataset root). */
  attributeFiles: z.array(z.string().min(1)).optional(),
  /** Split the linear probe is trained on (its `split` is the one scored; default val). */
  trainSplit: z.string().default('train'),
  maxTrainTokens: LinearSegConfigSchema.shape.maxTrainTokens,
};

/**
 * The text-query tasks' fields (ImageNet-S semseg, RefCOCO refseg): which texts are queried and how they are scored, the
 * scoring from the text-query probe's own schema (TextQueryConfigSchema). Shared by `kvlens probe` and a `kvlens run`
 * experiment's tasks, so the flow can set everything the probe can.
 */
export const PROBE_TEXT_QUERY_FIELDS = {
  /** ImageNet-S variant: 50, 300 or 919. */
  variant: z.union([z.literal(50), z.literal(300), z.literal(919)]).default(50),
  /** wnid -> name list for ImageNet-S (default: LOC_synset_mapping.txt / synset_words.txt under the root). */
  classNames: z.string().min(1).optional(),
  /** Class-name text; "{}" is replaced by the name (default: the bare name). */
  textTemplate: z.string().min(1).default('{}'),
  /** ImageNet-S classes queried per image: the ones in its mask, or every class of the variant. */
  queries: z.enum(['present', 'all']).default('present'),
  similarity: TextQueryConfigSchema.shape.similarity,
  maskRule: TextQueryConfigSchema.shape.maskRule,
  threshold: TextQueryConfigSchema.shape.threshold,
  fraction: TextQueryConfigSchema.shape.fraction,
};

/** DAVIS label propagation's settings, from the propagation probe's own schema. */
export const PROBE_PROPAGATION_FIELDS = {
  contextFrames: PropagationConfigSchema.shape.contextFrames,
  temperature: PropagationConfigSchema.shape.temperature,
  topK: PropagationConfigSchema.shape.topK,
  radius: PropagationConfigSchema.shape.radius,
};

/** Scoring settings of the text-query tasks (ImageNet-S, RefCOCO) and of DAVIS propagation, from their probes' schemas. */
export const PROBE_METHOD_FIELDS = {
  similarity: TextQueryConfigSchema.shape.similarity,
  maskRule: TextQueryConfigSchema.shape.maskRule,
  threshold: TextQueryConfigSchema.shape.threshold,
  fraction: TextQueryConfigSchema.shape.fraction,
  contextFrames: PropagationConfigSchema.shape.contextFrames,
  temperature: PropagationConfigSchema.shape.temperature,
  topK: PropagationConfigSchema.shape.topK,
  radius: PropagationConfigSchema.shape.radius,
};
