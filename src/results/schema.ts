// The run-directory results contract: zod schemas for every file an experiment run writes and the report/viewer read.
// The full layout and the meaning of every field are documented in docs/run-dir.md and in src/results/rundir.ts.
//
// Conventions that hold across files:
//  - Fractions are in [0, 1] (accuracies, precision, recall, F1, rates); only MME scores are in points (0..200 per subtask).
//  - `layer` is a 0-based language-model layer index, or null for taps that have no layer (projector.out, siglip.post_norm).
//  - `tap` is a concrete hook name from src/taps/names.ts (lm.14.attn.v, projector.out, siglip.post_norm).
//  - Token positions index the image-token grid row-major: position p = row * cols + col (newline tokens excluded).
import { z } from 'zod';
import type { ResultRow } from '../probes/results.js';

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const fraction = z.number().min(0).max(1);
const count = z.number().int().min(0);
const layerIndex = z.number().int().min(0);

/** One probe measurement. Shared by probes.json/csv and prefix.json. */
export const ProbeRowSchema = z.object({
  task: z.string().min(1),
  model: z.string().min(1),
  tap: z.string().min(1),
  layer: layerIndex.nullable(),
  metric: z.string().min(1),
  value: finite,
  /** Number of evaluated items (episodes, images, keypoints) behind `value`. */
  n: count,
  seed: z.number().int(),
});
export type ProbeRow = z.infer<typeof ProbeRowSchema>;
// The probes' own row type (src/probes/results.ts) and this schema must stay the same shape: compile-time check both ways.
const rowToResult = (r: ProbeRow): ResultRow => r;
const resultToRow = (r: ResultRow): ProbeRow => ({ ...r });
void rowToResult;
void resultToRow;

/**
 * probes.json as the probes' writer emits it: { rows, protocol }, with non-finite values written as null. Readers drop
 * null-valued rows (a metric that was undefined for that layer) and report how many.
 */
export const ProbesFileSchema = z.object({
  rows: z.array(ProbeRowSchema.extend({ value: finite.nullable() })),
  protocol: z.record(z.string(), z.unknown()).optional(),
});
export type ProbesFile = z.infer<typeof ProbesFileSchema>;

export const ManifestSchema = z.object({
  experiment: z.string().min(1),
  kvlensVersion: z.string().min(1),
  createdAt: z.string().min(1),
  models: z.array(z.object({
    id: z.string().min(1),
    revision: z.string().optional(),
    configHash: z.string().min(1),
    lmLayers: z.number().int().positive(),
    visionLayers: z.number().int().min(0).optional(),
  })).min(1),
  datasets: z.array(z.object({
    name: z.string().min(1),
    split: z.string().optional(),
    path: z.string().optional(),
    hash: z.string().min(1),
    count: count.optional(),
  })),
  /** Rendered prompt templates by name (e.g. pope, blink, extraction). */
  prompts: z.record(z.string(), z.string()),
  seeds: z.array(z.number().int()),
  dtype: z.string().min(1),
  device: z.string().min(1),
  /** Wall-clock seconds per step (extract, probe, benchmark, ...). */
  timings: z.record(z.string(), finite),
  notes: z.string().optional(),
  /** The experiment file behind the run (`kvlens run`): its path, sha256 and the validated config with defaults. */
  config: z.object({ file: z.string().optional(), sha256: z.string().min(1), resolved: z.record(z.string(), z.unknown()) }).optional(),
});
export type Manifest = z.infer<typeof ManifestSchema>;

const HistogramSchema = z.object({
  /** Bin edges, ascending; edges.length === counts.length + 1. */
  edges: z.array(finite).min(2),
  counts: z.array(count).min(1),
}).refine((h) => h.edges.length === h.counts.length + 1, 'edges must have exactly one more entry than counts')
  .refine((h) => h.edges.every((e, i) => i === 0 || e > h.edges[i - 1]), 'edges must be strictly ascending');

export const KeyVarianceSchema = z.object({
  model: z.string().min(1),
  /** The keys the statistic was computed on, as a hook pattern (lm.{L}.attn.k). */
  tap: z.string().min(1),
  /** 'sum' = trace of the cross-image covariance (mean squared L2 distance to the mean key); 'mean' = that / dims. */
  statistic: z.enum(['sum', 'mean']),
  nImages: z.number().int().positive(),
  imageSource: z.string().min(1),
  grid: z.object({ rows: z.number().int().positive(), cols: z.number().int().positive() }),
  threshold: z.object({
    value: finite,
    /** How it was chosen: 'fixed' (given by the user) or 'bimodal-valley' (lowest bin between the two main peaks), ... */
    method: z.string().min(1),
    note: z.string().optional(),
  }),
  /** Layers whose flagged keys were blocked in the benchmark runs (may be empty). */
  blockedLayers: z.array(layerIndex),
  /** The token-map view the grid belongs to ('base' or 'highres'); absent = 'base'. */
  view: z.string().min(1).optional(),
  /**
   * The fixed resize every image got before the processor so that all give the same grid (a family with native
   * dynamic resolution, Qwen2-VL / Qwen2.5-VL, would otherwise give each image its own grid); absent = none.
   */
  resize: z.object({ width: z.number().int().positive(), height: z.number().int().positive(), filter: z.string().min(1), note: z.string().min(1) }).optional(),
  /** The statistic's definition in words (which keys, population variance, pre/post RoPE). */
  definition: z.string().min(1).optional(),
  /** The seeded control: per blocked layer as many random (non-flagged) positions as flagged. */
  randomControl: z.object({
    seed: z.number().int(),
    layers: z.array(z.object({ layer: layerIndex, positions: z.array(z.number().int().min(0)) })),
  }).optional(),
  /** The prompt the images were forwarded in, as tokenised (one image placeholder); absent = not recorded. */
  prompt: z.string().optional(),
  /**
   * allViews: the other token-map views of the same images ('highres' beside 'base'), each with its own grid, its own
   * per-position variance and its positions flagged against the same threshold; absent = the main view only.
   */
  otherViews: z.array(z.object({
    view: z.string().min(1),
    grid: z.object({ rows: z.number().int().positive(), cols: z.number().int().positive() }),
    /**
     * Present when this view's variance was computed per high-res grid shape (keys on native-resolution images): this
     * entry is the group of images whose grid is `grid`; `used` = nImages >= minImages (smaller groups are not blocked).
     */
    group: z.object({ nImages: z.number().int().positive(), minImages: z.number().int().positive(), used: z.boolean() }).strict().optional(),
    randomControl: z.object({ seed: z.number().int(), layers: z.array(z.object({ layer: layerIndex, positions: z.array(z.number().int().min(0)) })) }).optional(),
    layers: z.array(z.object({ layer: layerIndex, variance: z.array(finite), histogram: HistogramSchema, inputAgnostic: z.array(z.number().int().min(0)) })).min(1),
  })).optional(),
  layers: z.array(z.object({
    layer: layerIndex,
    /** [rows * cols] variance per image-token position, row-major. */
    variance: z.array(finite),
    histogram: HistogramSchema,
    /** Positions with variance < threshold, ascending. */
    inputAgnostic: z.array(z.number().int().min(0)),
    /** Optional per-KV-head variance [kvHead][rows * cols] (same statistic over each head's dims). */
    headVariance: z.array(z.array(finite)).optional(),
  })).min(1),
}).superRefine((kv, ctx) => {
  const n = kv.grid.rows * kv.grid.cols;
  kv.layers.forEach((l, i) => {
    if (l.variance.length !== n) {
      ctx.addIssue({ code: 'custom', path: ['layers', i, 'variance'], message: `has ${l.variance.length} entries, expected grid rows*cols = ${n}` });
    }
    const bad = l.inputAgnostic.find((p) => p >= n);
    if (bad !== undefined) ctx.addIssue({ code: 'custom', path: ['layers', i, 'inputAgnostic'], message: `position ${bad} is outside the ${n}-token grid` });
    l.headVariance?.forEach((h, k) => {
      if (h.length !== n) ctx.addIssue({ code: 'custom', path: ['layers', i, 'headVariance', k], message: `has ${h.length} entries, expected ${n}` });
    });
  });
  kv.randomControl?.layers.forEach((l, i) => {
    const bad = l.positions.find((p) => p >= n);
    if (bad !== undefined) ctx.addIssue({ code: 'custom', path: ['randomControl', 'layers', i, 'positions'], message: `position ${bad} is outside the ${n}-token grid` });
  });
  kv.otherViews?.forEach((o, k) => {
    const m = o.grid.rows * o.grid.cols;
    o.layers.forEach((l, i) => {
      if (l.variance.length !== m) ctx.addIssue({ code: 'custom', path: ['otherViews', k, 'layers', i, 'variance'], message: `has ${l.variance.length} entries, expected grid rows*cols = ${m}` });
      const bad = l.inputAgnostic.find((p) => p >= m);
      if (bad !== undefined) ctx.addIssue({ code: 'custom', path: ['otherViews', k, 'layers', i, 'inputAgnostic'], message: `position ${bad} is outside the ${m}-token grid` });
    });
  });
});
export type KeyVariance = z.infer<typeof KeyVarianceSchema>;

export const PopeSplitSchema = z.object({
  split: z.string().min(1),
  n: count,
  accuracy: fraction,
  precision: fraction,
  recall: fraction,
  f1: fraction,
  /** Fraction of PREDICTIONS that were "yes" (not the ground-truth ratio). */
  yesRatio: fraction,
  unparsedRate: fraction,
  /** lmms-eval's `pope_yes_ratio`: the fraction of GROUND-TRUTH yes (0.5 on balanced POPE), not of predictions. */
  gtYesRatio: fraction.optional(),
});
export const MmeSubtaskSchema = z.object({
  name: z.string().min(1),
  category: z.enum(['perception', 'cognition']),
  /** Per-question accuracy and per-image both-correct accuracy, fractions. */
  acc: fraction,
  accPlus: fraction,
  /** 100 * (acc + accPlus), 0..200. */
  score: z.number().min(0).max(200),
  /** Images (question pairs) behind the numbers. */
  images: count.optional(),
});
export const BlinkSubtaskSchema = z.object({ name: z.string().min(1), n: count, accuracy: fraction, unparsedRate: fraction.optional() });

export const BenchmarkConditionSchema = z.object({
  /** 'none' | 'block-input-agnostic' | 'block-random' (a control with as many random positions blocked); others allowed. */
  name: z.string().min(1),
  blockedLayers: z.array(layerIndex).optional(),
  blockedPositions: count.optional(),
  pope: z.object({ parser: z.string().min(1), splits: z.array(PopeSplitSchema).min(1) }).optional(),
  /** `parser` (optional for MME/BLINK): the answer parser that produced the numbers, e.g. lmms-parse_pred_ans. */
  mme: z.object({ subtasks: z.array(MmeSubtaskSchema).min(1), perception: z.number().min(0), cognition: z.number().min(0), parser: z.string().min(1).optional() }).optional(),
  blink: z.object({ subtasks: z.array(BlinkSubtaskSchema).min(1), macro: fraction, micro: fraction, unparsedRate: fraction.optional(), parser: z.string().min(1).optional() }).optional(),
});
export type BenchmarkCondition = z.infer<typeof BenchmarkConditionSchema>;
export const BenchmarksSchema = z.object({ model: z.string().min(1), conditions: z.array(BenchmarkConditionSchema).min(1) });
export type Benchmarks = z.infer<typeof BenchmarksSchema>;

export const PrefixSchema = z.object({
  conditions: z.array(z.object({
    /** 'none' | 'correct' | 'random' | 'incorrect' (others allowed, e.g. 'neutral'). */
    name: z.string().min(1),
    /** An example or template of the prefix text ('' for none). */
    prefix: z.string(),
    rows: z.array(ProbeRowSchema),
  })).min(1),
});
export type PrefixResults = z.infer<typeof PrefixSchema>;

export const UnderutilTableSchema = z.object({
  valueRightMlmRight: count,
  valueRightMlmWrong: count,
  valueWrongMlmRight: count,
  valueWrongMlmWrong: count,
});
export type UnderutilTable = z.infer<typeof UnderutilTableSchema>;
export const UnderutilSchema = z.object({
  model: z.string().min(1),
  tap: z.string().min(1),
  /** How the value-based answer is made (e.g. 'mean-pooled values, cosine to the reference'). */
  rule: z.string().min(1),
  /** 'oracle-best' (best layer per subtask) or 'fixed'. */
  layerChoice: z.string().min(1),
  subtasks: z.array(z.object({ name: z.string().min(1), layer: layerIndex, table: UnderutilTableSchema })).min(1),
  /** The other layer choices computed in the same run (e.g. the held-out split beside the all-questions choice). */
  alternatives: z.array(z.object({
    layerChoice: z.string().min(1),
    subtasks: z.array(z.object({ name: z.string().min(1), layer: layerIndex, table: UnderutilTableSchema })).min(1),
  })).optional(),
});
export type Underutil = z.infer<typeof UnderutilSchema>;

export const SampleIndexSchema = z.object({
  samples: z.array(z.object({
    /** A file name inside <run>/samples (no directories). */
    file: z.string().regex(/^[^/\\]+\.(png|jpg|jpeg|svg)$/i, 'must be a plain .png/.jpg/.svg file name inside samples/'),
    title: z.string().min(1),
    kind: z.enum(['mask', 'correspondence', 'video', 'other']),
    task: z.string().optional(),
    caption: z.string().optional(),
  })),
});
export type SampleIndex = z.infer<typeof SampleIndexSchema>;

/** Per-image probe masks at token-grid resolution, for the viewer: <run>/masks/<image-id>.json. */
export const MaskFileSchema = z.object({
  imageId: z.string().min(1),
  task: z.string().min(1),
  grid: z.object({ rows: z.number().int().positive(), cols: z.number().int().positive() }),
  /** Ground-truth foreground per token [rows * cols] (0..1), when known. */
  truth: z.array(fraction).optional(),
  /** layer index (as a string key) -> predicted foreground probability per token [rows * cols]. */
  layers: z.record(z.string().regex(/^\d+$/), z.array(fraction)),
}).superRefine((m, ctx) => {
  const n = m.grid.rows * m.grid.cols;
  if (m.truth && m.truth.length !== n) ctx.addIssue({ code: 'custom', path: ['truth'], message: `has ${m.truth.length} entries, expected ${n}` });
  for (const [l, v] of Object.entries(m.layers)) {
    if (v.length !== n) ctx.addIssue({ code: 'custom', path: ['layers', l], message: `has ${v.length} entries, expected ${n}` });
  }
});
export type MaskFile = z.infer<typeof MaskFileSchema>;

/** Attention from text tokens to image tokens, head-averaged: <run>/attention/<image-id>.json. */
export const AttentionFileSchema = z.object({
  imageId: z.string().min(1),
  grid: z.object({ rows: z.number().int().positive(), cols: z.number().int().positive() }),
  /** The text tokens (query positions) the rows refer to, as decoded strings. */
  tokens: z.array(z.string()).min(1),
  /** layer -> [token][rows * cols] attention probabilities. */
  layers: z.record(z.string().regex(/^\d+$/), z.array(z.array(fraction))),
}).superRefine((a, ctx) => {
  const n = a.grid.rows * a.grid.cols;
  for (const [l, rows] of Object.entries(a.layers)) {
    if (rows.length !== a.tokens.length) ctx.addIssue({ code: 'custom', path: ['layers', l], message: `has ${rows.length} token rows, expected ${a.tokens.length}` });
    rows.forEach((r, t) => {
      if (r.length !== n) ctx.addIssue({ code: 'custom', path: ['layers', l, t], message: `has ${r.length} entries, expected ${n}` });
    });
  }
});
export type AttentionFile = z.infer<typeof AttentionFileSchema>;
