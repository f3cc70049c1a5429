// The experiment file of `kvlens run <experiment.yaml>`: one validated value per run (zod schema -> type), parsed at
// the edge and passed down. Every field is documented here; docs/experiments.md shows one file per experiment.
//
//   experiment: flow | keys | blocking | prefix | underutil     which of the paper's experiments
//   model, out, seed, device, dtype, threads, name, modelName    common to all
//   ...the experiment's own fields (below)
//
// Relative paths in the file are resolved against the file's folder, so an experiment file travels with its data.

import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { PROBE_DATASET_FIELDS, PROBE_TASKS } from './flow.js';
import { PROBE_PROPAGATION_FIELDS, PROBE_TEXT_QUERY_FIELDS } from '../probes/fields.js';
import { DEVICES } from '../runtime/device.js';
import { ENCODER_ROWS } from './encoder-rows.js';
import { DEFAULT_PICTURES, PicturesSchema } from './pictures.js';
import { parseYamlGuarded } from '../util/guarded-yaml.js';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';

const path = z.string().min(1);

/** Fields every experiment has. */
const Common = {
  /** Run name (manifest.experiment); default "<experiment>: <file name>". */
  name: z.string().min(1).optional(),
  /** Model checkpoint directory (Hugging Face layout) of any supported family: llava_onevision, llava_next, qwen2_vl, qwen2_5_vl. */
  model: path,
  /** Name written in result rows (default: the model directory's name). */
  modelName: z.string().min(1).optional(),
  /** Run directory (manifest.json, results/...); created; existing result files are replaced. */
  out: path,
  /** Seed of every random choice (episodes, random prefix, random control, held-out split). */
  seed: z.number().int().default(0),
  device: z.enum(DEVICES).default('cpu'),
  /** Feature-store dtype for the experiments that extract (flow, prefix). */
  dtype: z.enum(['float16', 'float32']).default('float16'),
  /** Probe worker threads (default: all cores). */
  threads: z.number().int().positive().optional(),
  /** Dataset hashes: 'content' hashes every file's bytes; 'listing' only paths, sizes and mtimes (fast on huge sets). */
  hashData: z.enum(['content', 'listing']).default('content'),
  /**
   * An image that cannot be read or processed while extracting (flow, prefix): 'stop' the run naming it (default), or
   * 'skip' it — listed in the manifest notes, and `kvlens run` exits 1 (finished, but not on every image).
   */
  onError: z.enum(['stop', 'skip']).default('stop'),
  /**
   * Pictures for the viewer and report (src/experiments/pictures.ts): flow writes per-layer probe masks + ground truth
   * (and text->image attention) for `images` few-shot images; blocking / underutil write text->image attention for
   * `questions` questions; keys draws its variance maps. 0 turns a kind off.
   */
  pictures: PicturesSchema.default(DEFAULT_PICTURES),
};

/** One probe task of the layer-wise flow (the flow's own fields; see src/experiments/flow.ts). */
export const ProbeTaskSchema = z.object({
  task: z.enum(PROBE_TASKS),
  /** Dataset root in its on-disk layout. */
  data: path,
  ...PROBE_DATASET_FIELDS,
  /** semseg / refseg: the texts queried and their scoring (the text-query probe's own schema, src/probes/fields.ts). */
  ...PROBE_TEXT_QUERY_FIELDS,
  /** propagation: DAVIS label-propagation settings (the propagation probe's own schema). */
  ...PROBE_PROPAGATION_FIELDS,
  /** Only the first N dataset images are extracted (smoke runs). */
  limit: z.number().int().positive().optional(),
}).strict();
export type ProbeTaskConfig = z.infer<typeof ProbeTaskSchema>;

/** Extraction settings shared by flow and prefix. */
const Extraction = {
  /** Layers of the LM taps: "*", "3-5", "0,7,14", "-10:". */
  layers: z.string().min(1).default('*'),
  /**
   * Store view the LM taps are probed on ('base': the overview tile; 'highres': the anyres grid, or Qwen's one native
   * grid). Default: 'base' where the model has it, else its one grid ('highres').
   */
  view: z.enum(['base', 'highres']).optional(),
  /** Square resize before the processor (every image the same grid). */
  resolution: z.number().int().positive().optional(),
  /** Where the feature stores go (default <out>/stores); an existing matching store is resumed. */
  stores: path.optional(),
};

export const FlowSchema = z.object({
  experiment: z.literal('flow'),
  ...Common,
  ...Extraction,
  tasks: z.array(ProbeTaskSchema).min(1),
  /** LM tap families probed on every layer: values and keys. */
  lmTaps: z.array(z.enum(['values', 'keys'])).min(1).default(['values', 'keys']),
  /** Reference rows: the projector output (what the LM receives) and, with `encoderBaseline`, the un-finetuned encoder. */
  projector: z.boolean().default(true),
  /**
   * Un-finetuned encoder tower directory (SigLIP so400m-patch14-384 for LLaVA-OneVision, CLIP ViT-L/14-336 for
   * LLaVA-NeXT): its rows are read at `encoderRows` (src/experiments/encoder-rows.ts).
   */
  encoderBaseline: path.optional(),
  /** Old name of encoderBaseline. */
  siglip: path.optional(),
  /** 'projector-input': the layer the MLM's projector reads (vision_feature_layer); 'post_norm': the last layer (extra). */
  encoderRows: z.array(z.enum(ENCODER_ROWS)).min(1).default(['projector-input']),
}).strict().refine((c) => !(c.siglip && c.encoderBaseline && c.siglip !== c.encoderBaseline), {
  message: 'encoderBaseline and siglip (its old name) name different directories; give one', path: ['encoderBaseline'],
});

const KeysFields = {
  /** Images: a directory, a list file, or dataset:<name>:<root>[?split=...] (COCO: dataset:coco:<root>?split=val2017). */
  images: z.string().min(1),
  /** Number of images (the first N of the list). */
  n: z.number().int().positive().default(1000),
  /**
   * Square resize so every image gives the same grid (one high-res grid shape), or 'native': images as they are, and
   * with allViews (or blockViews 'all') the high-res view's variance is computed per high-res grid shape, each shape a
   * group of its own, so a benchmark image at native resolution is blocked from its own shape's flags. Needs a base
   * view (LLaVA families); Qwen2-VL's one native grid is refused (give a fixed resolution).
   */
  resolution: z.union([z.number().int().positive(), z.literal('native')]).default(384),
  /** resolution 'native': grid groups with fewer images are recorded in key_variance.json but not used for blocking. */
  minGroupImages: z.number().int().positive().default(10),
  /** Grid whose keys are compared across images; default 'base' where the model has it, else its one grid ('highres'). */
  view: z.enum(['base', 'highres']).optional(),
  statistic: z.enum(['sum', 'mean']).default('sum'),
  /** A fixed τ (e.g. 450 for LLaVA-OneVision 7B, statistic sum) or 'auto' (valley of the bimodal distribution). */
  threshold: z.union([z.number().nonnegative(), z.literal('auto')]).default('auto'),
  /** Layers whose input-agnostic keys are blocked later (relative to the LM depth): default the last 10. */
  blockLayers: z.string().min(1).default('-10:'),
  histogramBins: z.number().int().min(2).max(1000).default(40),
  perHead: z.boolean().default(false),
  /**
   * Also flag positions on every other view (the high-resolution grid beside the base tile), each from its own
   * variance; a blocking run with blockViews 'all' turns this on itself.
   */
  allViews: z.boolean().default(false),
  /**
   * The prompt the images are forwarded in: 'benchmark' (default) = exactly the blocking benchmarks' rendering (the
   * model family's lmms-eval prompt format: chat template and system turn) of `promptBenchmark`'s task context with
   * `question`, so every image key sees the tokens it sees in the benchmark; 'extraction' = the extraction default
   * (the checkpoint's chat template, no question). Recorded in key_variance.json and the manifest (prompts.keys).
   */
  prompt: z.enum(['benchmark', 'extraction']).default('benchmark'),
  /** Whose task context the 'benchmark' prompt renders (the single-image benchmarks). */
  promptBenchmark: z.enum(['pope', 'mme']).default('pope'),
  /** The question in the 'benchmark' prompt. Image keys see only the tokens before the image: it changes the recorded prompt, not the variance. */
  question: z.string().default(''),
  /** Resumable accumulator state (default <out>/key_variance.state). */
  state: path.optional(),
};

export const KeysSchema = z.object({ experiment: z.literal('keys'), ...Common, ...KeysFields }).strict();

export const BenchmarkSpecSchema = z.discriminatedUnion('name', [
  z.object({
    name: z.literal('pope'), data: path,
    /** POPE splits, each evaluated in turn. */
    splits: z.array(z.enum(['random', 'popular', 'adversarial'])).min(1).default(['random', 'popular', 'adversarial']),
    /** COCO val2014 image folder when it is not beside the question files. */
    imageRoot: path.optional(),
    limit: z.number().int().positive().optional(),
  }).strict(),
  z.object({ name: z.literal('mme'), data: path, subset: z.string().optional(), limit: z.number().int().positive().optional() }).strict(),
  z.object({ name: z.literal('blink'), data: path, split: z.literal('val').default('val'), subset: z.string().optional(), limit: z.number().int().positive().optional() }).strict(),
]);
export type BenchmarkSpec = z.infer<typeof BenchmarkSpecSchema>;

/** The paper's three conditions (the default), plus 'block-all-image': every image token blocked in the chosen layers (a ceiling). */
export const BLOCKING_CONDITIONS = ['none', 'block-input-agnostic', 'block-random'] as const;
export const BLOCKING_CONDITION_NAMES = [...BLOCKING_CONDITIONS, 'block-all-image'] as const;

export const BlockingSchema = z.object({
  experiment: z.literal('blocking'),
  ...Common,
  /** A key_variance.json from a keys run; or `keys` to compute it first (written into this run too). */
  keyVariance: path.optional(),
  keys: z.object(KeysFields).strict().optional(),
  /** Layers to block (default: the key-variance run's blockedLayers, i.e. its blockLayers, default the last 10). */
  blockLayers: z.string().min(1).optional(),
  /**
   * Which image keys are blocked (the paper leaves it open): 'base' (default) = the flagged positions of the view the
   * key variance was computed on (the base tile where the model has one, else its one grid), in that view only;
   * 'all' = the flagged (view, position)s of every view the keys run has (base tile AND high-resolution grid, each view
   * flagged from its own variance). With `keys`, 'all' computes every view's variance; a keyVariance file must hold them.
   */
  blockViews: z.enum(['base', 'all']).default('base'),
  /** How flagged cells of the key-variance grid map onto a benchmark image's grid when the two differ. */
  gridMatch: z.enum(['exact', 'nearest']).default('nearest'),
  benchmarks: z.array(BenchmarkSpecSchema).min(1),
  conditions: z.array(z.enum(BLOCKING_CONDITION_NAMES)).min(1).default([...BLOCKING_CONDITIONS]),
  /** Generated tokens per answer (default lmms-eval's: POPE 128, MME 16, BLINK 1024). */
  maxNewTokens: z.number().int().positive().optional(),
  /** POPE parser behind benchmarks.json (both are in the raw outputs). */
  popeParser: z.enum(['lmms-exact', 'llava-first-sentence']).default('lmms-exact'),
  prefixCacheSize: z.number().int().positive().default(2),
}).strict().refine((c) => (c.keyVariance === undefined) !== (c.keys === undefined), {
  message: 'give exactly one of keyVariance (a key_variance.json) or keys (compute it in this run)', path: ['keyVariance'],
});

export const PrefixExperimentSchema = z.object({
  experiment: z.literal('prefix'),
  ...Common,
  ...Extraction,
  task: ProbeTaskSchema,
  /**
   * The text before the image per condition; 'none' (no prefix) always runs first. Each condition is either a keyword,
   * giving every image its own prefix from the dataset's labels (src/experiments/prefix-labels.ts), or any other string,
   * used verbatim for every image. Keyword texts are `template` with {class} filled in; the store records each image's
   * prefix and the manifest its rendered prompt (prompts["extraction.<condition>.<image id>"]).
   */
  prefixes: z.object({
    /**
     * 'class-name': the image's own class(es) from the labels (Pascal-5i VOC class, SPair category, MSRC group,
     * ImageNet-S class name, RefCOCO category; several joined with " and "); 'domain': the `domain` text for every
     * image (datasets without per-image classes, e.g. BDD10K night scenes: domain "night highway"); else a literal.
     */
    correct: z.string().min(1),
    /** 'other-class': per image, a seeded choice of a class name from the dataset's vocabulary that the image does not hold; else a literal (e.g. "sunny beach"). */
    incorrect: z.string().min(1),
    /** 'seeded-words' (default): per image, `randomWords` seeded nonsense words (seed + image id) in the template; else a literal. */
    random: z.string().min(1).default('seeded-words'),
    /** Keyword texts: {class} is replaced by the class name(s), the domain, the other class or the random words. */
    template: z.string().includes('{class}', { message: 'the template must hold {class}' }).default('a photo of a {class}'),
    /** The domain text for correct: 'domain'. */
    domain: z.string().min(1).optional(),
    /** ImageNet-S "<wnid> <name>, ..." list (default: LOC_synset_mapping.txt / synset_words.txt / imagenet_class_names.txt under the root). */
    classNames: path.optional(),
  }).strict().refine((p) => p.correct !== 'domain' || p.domain !== undefined, { message: "correct: 'domain' needs prefixes.domain (e.g. night highway)", path: ['domain'] }),
  /** Words per seeded random prefix. */
  randomWords: z.number().int().positive().default(2),
  /** Appended to each prefix before the image placeholder. */
  separator: z.string().default('\n'),
  lmTaps: z.array(z.enum(['values', 'keys'])).min(1).default(['values']),
}).strict();

export const DEFAULT_UNDERUTIL_SUBTASKS = ['Art_Style', 'Visual_Similarity', 'Jigsaw'] as const;

export const UnderutilExperimentSchema = z.object({
  experiment: z.literal('underutil'),
  ...Common,
  /** BLINK root (HF BLINK-Benchmark/BLINK layout), val split. */
  data: path,
  /**
   * Image-comparison subtasks: the first image is the reference, choice k names image k + 2. Default: Art_Style,
   * then Visual_Similarity and Jigsaw (those present under `data`).
   */
  subtasks: z.array(z.string().min(1)).min(1).optional(),
  /** LM layers whose pooled values answer (default every layer); the best one is used (see layerChoice). */
  layers: z.string().min(1).default('*'),
  /**
   * The headline layer choice (both are always computed and written): 'all' = the layer with the best value accuracy
   * over all of a subtask's questions, the 2x2 table counted on all of them (the paper's "33.3% of Art Style
   * questions" = 39/117 reads this way; an oracle layer); 'split' = the layer chosen on a seeded `heldOut` share, the
   * table on the rest (an honest held-out estimate over about half the questions).
   */
  layerChoice: z.enum(['all', 'split']).default('all'),
  /** Share of each subtask's questions (seeded) that only chooses the layer for the 'split' choice; 0 = no split row. */
  heldOut: z.number().min(0).lt(1).default(0.5),
  /**
   * How each image's values are produced: 'alone' = each image in its own prefill of the model's prompt template (no
   * image sees another; the paper-protocols reading); 'joint' = the one BLINK multi-image prefill the MLM answers from
   * (later images attend to earlier ones). The MLM answer always comes from the joint BLINK prompt.
   */
  encode: z.enum(['alone', 'joint']).default('alone'),
  pooling: z.enum(['mean']).default('mean'),
  similarity: z.enum(['cosine']).default('cosine'),
  maxNewTokens: z.number().int().positive().optional(),
  limit: z.number().int().positive().optional(),
}).strict().refine((c) => c.layerChoice !== 'split' || c.heldOut > 0, {
  message: "layerChoice 'split' needs heldOut > 0 (the share of questions that chooses the layer)", path: ['heldOut'],
});

export const ExperimentSchema = z.union([FlowSchema, KeysSchema, BlockingSchema, PrefixExperimentSchema, UnderutilExperimentSchema]);
export type ExperimentConfig = z.infer<typeof ExperimentSchema>;
export type FlowConfig = z.infer<typeof FlowSchema>;
export type KeysExperimentConfig = z.infer<typeof KeysSchema>;
export type BlockingConfig = z.infer<typeof BlockingSchema>;
export type PrefixConfig = z.infer<typeof PrefixExperimentSchema>;
export type UnderutilConfig = z.infer<typeof UnderutilExperimentSchema>;
export const EXPERIMENTS = ['flow', 'keys', 'blocking', 'prefix', 'underutil'] as const;
export type ExperimentName = (typeof EXPERIMENTS)[number];

const SCHEMAS: Record<ExperimentName, z.ZodType> = {
  flow: FlowSchema, keys: KeysSchema, blocking: BlockingSchema, prefix: PrefixExperimentSchema, underutil: UnderutilExperimentSchema,
};

/** Path-valued fields (dotted, '*' = every array element) resolved against the experiment file's folder. */
const PATH_FIELDS = ['model', 'out', 'stores', 'siglip', 'encoderBaseline', 'keyVariance', 'data', 'state', 'tasks.*.data', 'task.data', 'tasks.*.classNames', 'task.classNames', 'benchmarks.*.data', 'benchmarks.*.imageRoot', 'keys.state', 'prefixes.classNames'];

function resolvePaths(value: Record<string, unknown>, base: string): void {
  const abs = (p: unknown) => (typeof p === 'string' && !isAbsolute(p) ? resolve(base, p) : p);
  const walk = (obj: unknown, parts: string[]): void => {
    if (obj === null || typeof obj !== 'object') return;
    const [head, ...rest] = parts;
    if (head === '*') {
      if (Array.isArray(obj)) for (const el of obj) walk(el, rest);
      return;
    }
    const o = obj as Record<string, unknown>;
    if (!(head in o)) return;
    if (rest.length === 0) o[head] = abs(o[head]);
    else walk(o[head], rest);
  };
  for (const f of PATH_FIELDS) walk(value, f.split('.'));
  // Image specs: a directory / list file is a path; dataset:<name>:<root> has its root resolved.
  for (const holder of [value, value.keys as Record<string, unknown> | undefined]) {
    if (!holder || typeof holder.images !== 'string') continue;
    const m = /^dataset:([^:]+):(.+?)(\?.*)?$/.exec(holder.images);
    holder.images = m ? `dataset:${m[1]}:${abs(m[2])}${m[3] ?? ''}` : abs(holder.images);
  }
}

/** Validate an experiment value (already path-resolved); errors name the field and what was expected. */
export function parseExperimentConfig(input: unknown, where = 'experiment'): ExperimentConfig {
  const kind = (input as { experiment?: unknown } | null)?.experiment;
  if (typeof kind !== 'string' || !(EXPERIMENTS as readonly string[]).includes(kind)) {
    throw new KvlensInputError(`field "experiment" must be one of ${EXPERIMENTS.join(', ')}, got ${JSON.stringify(kind)}`, where);
  }
  const r = SCHEMAS[kind as ExperimentName].safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new KvlensInputError(`field "${issue.path.join('.') || '(root)'}": ${issue.message}`, where);
  }
  return r.data as ExperimentConfig;
}

export interface LoadedExperiment {
  readonly config: ExperimentConfig;
  /** The file as written, and its sha256 (recorded in the manifest). */
  readonly file: string;
  readonly text: string;
  readonly sha256: string;
}

/** Read, resolve relative paths against the file's folder, and validate an experiment YAML (or JSON) file. */
export function loadExperimentFile(file: string, overrides: Record<string, unknown> = {}): LoadedExperiment {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new KvlensUsageError(`cannot read the experiment file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const raw = parseYamlGuarded(text, file);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new KvlensInputError('expected a mapping of fields (experiment: ..., model: ..., out: ...)', file);
  const value = { ...(raw as Record<string, unknown>), ...overrides };
  resolvePaths(value, dirname(resolve(file)));
  return { config: parseExperimentConfig(value, file), file: resolve(file), text, sha256: createHash('sha256').update(text).digest('hex') };
}
