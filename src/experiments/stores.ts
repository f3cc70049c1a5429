// Feature stores for the probe experiments (flow, prefix): the images a probe task reads, extracted once per store
// with the taps the experiment needs, then the layer-wise flow over them; plus the curve summary of the rows.

import { readFile } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { iterateDataset, type DatasetName, type GenericDatasetOptions, type ImageSource } from '../data/index.js';
import { extractFeatures } from '../extract/extract.js';
import { decodeAny, type ImageItem } from '../extract/sources.js';
import type { ResultRow } from '../probes/results.js';
import { FeatureStore } from '../store/index.js';
import { tapFamily } from '../taps/names.js';
import { isBaselineTap } from '../taps/table.js';
import { KvlensInputError, printable } from '../util/errors.js';
import { DEFAULT_DATASET, runProbeFlow, type ProbeFlowResult } from './flow.js';
import type { ProbeTaskConfig } from './config.js';
import type { EncoderRows } from './encoder-rows.js';

export const taskDataset = (t: ProbeTaskConfig): DatasetName => t.dataset ?? DEFAULT_DATASET[t.task];

/** The loader runs whose images the task's ground truth uses (mirrors the flow's truth loaders). */
export function loaderRuns(t: ProbeTaskConfig): GenericDatasetOptions[] {
  if (t.task === 'fewshot-seg') {
    if (t.fold === 'pooled') return [0, 1, 2, 3].flatMap((fold) => ['val', 'trn'].map((split) => ({ fold, split })));
    return (t.fold === 'all' ? [0, 1, 2, 3] : [t.fold]).map((fold) => ({ fold, split: t.split ?? 'val' }));
  }
  if (t.task === 'bddseg') return [...new Set([t.trainSplit, t.split ?? 'val'])].map((split) => ({ split, select: t.select, attributeFiles: t.attributeFiles }));
  if (t.task === 'correspondence') return [{ split: t.split ?? 'test' }];
  if (t.task === 'refseg') return [{ split: t.split ?? 'val', subset: t.subset }];
  if (t.task === 'semseg' || t.task === 'propagation') return [{ split: t.split }];
  return [{ subset: t.subset }];
}

/** The store id of a dataset image: its path relative to the dataset root ("/"-separated), or the parquet struct name. */
export function taskImageId(root: string, src: ImageSource): string {
  return src.kind === 'path' ? relative(root, src.path).split(sep).join('/') : src.name;
}

/** Every distinct image of the task's samples, id = path relative to the dataset root (the store's convention). */
export async function taskImages(t: ProbeTaskConfig): Promise<ImageItem[]> {
  const root = resolve(t.data);
  const seen = new Map<string, ImageItem>();
  const add = (src: ImageSource | null | undefined) => {
    if (!src || (t.limit !== undefined && seen.size >= t.limit)) return;
    const id = taskImageId(root, src);
    const item: ImageItem = src.kind === 'path'
      ? { id, source: resolve(src.path), load: async () => decodeAny(new Uint8Array(await readFile(src.path)), src.path) }
      : { id, source: src.name, load: () => decodeAny(src.bytes, src.name) };
    if (!seen.has(item.id)) seen.set(item.id, item);
  };
  for (const run of loaderRuns(t)) {
    for await (const s of iterateDataset(taskDataset(t), root, run)) {
      const x = s as { image?: ImageSource; src?: { image: ImageSource }; trg?: { image: ImageSource }; frames?: { image: ImageSource }[] };
      add(x.image);
      add(x.src?.image);
      add(x.trg?.image);
      for (const f of x.frames ?? []) add(f.image); // DAVIS: every frame of the sequence
    }
  }
  if (seen.size === 0) throw new KvlensInputError(`the ${taskDataset(t)} dataset yielded no images for task ${t.task}`, root);
  return [...seen.values()];
}

export interface StoreSpec {
  readonly model: string;
  readonly out: string;
  readonly lmTaps: readonly ('values' | 'keys')[];
  readonly layers: string;
  readonly view: 'base' | 'highres';
  readonly projector: boolean;
  /** The un-finetuned encoder baseline: its tower directory and the taps read from it (src/experiments/encoder-rows.ts). */
  readonly encoder?: EncoderRows;
  readonly dtype: 'float16' | 'float32';
  readonly device: 'cpu' | 'cuda' | 'webgpu';
  readonly resolution?: number;
  readonly prefix?: string;
  /** Per-image prefixes (each ImageItem carries its own): how they were derived, recorded as the store's prompt.perImage. */
  readonly perImagePrefix?: string;
  /** An image that fails: stop (default) or skip (returned in `skipped`). */
  readonly onError?: 'stop' | 'skip';
}

/** Extract (or resume) one store; returns the prompt exactly as the store recorded it. */
export async function extractStore(spec: StoreSpec, images: readonly ImageItem[]): Promise<{ store: string; prompt: string; images: number; skipped: string[] }> {
  const taps: string[] = [...spec.lmTaps];
  if (spec.projector) taps.push('projector.out');
  if (spec.encoder) taps.push(...spec.encoder.taps);
  // projector.out exists for the base tile only: keep the base view whenever it is probed.
  const views = [...new Set<'base' | 'highres'>([...(spec.projector ? ['base' as const] : []), spec.view])];
  const summary = await extractFeatures({
    model: spec.model, images: `${images.length} listed dataset images`, out: spec.out, taps, layers: spec.layers, views,
    dtype: spec.dtype, device: spec.device, prefix: spec.prefix ?? '', ...(spec.resolution ? { resolution: spec.resolution } : {}),
    ...(spec.encoder ? { encoderBaseline: spec.encoder.dir } : {}), ...(spec.perImagePrefix ? { perImagePrefix: spec.perImagePrefix } : {}),
    ...(spec.onError ? { onError: spec.onError } : {}),
  }, { images });
  const store = FeatureStore.open(spec.out);
  try {
    return { store: spec.out, prompt: store.identity.prompt.template, images: store.images().length, skipped: summary.skipped.map((s) => `${printable(s.id)}: ${s.error}`) };
  } finally {
    store.close();
  }
}

/** The layer-wise flow of one task over a store: LM taps on the chosen view, reference taps on their own views. */
/** The probe-flow fields an experiment task sets (dataset, Pascal-5i, SPair, BDD10K, text-query and propagation fields). */
export function probeTaskFields(t: ProbeTaskConfig) {
  return {
    task: t.task, data: t.data, dataset: t.dataset, fold: t.fold, split: t.split, subset: t.subset, shots: t.shots,
    episodes: t.episodes, alphas: t.alphas,
    select: t.select, attributeFiles: t.attributeFiles, trainSplit: t.trainSplit, maxTrainTokens: t.maxTrainTokens,
    variant: t.variant, classNames: t.classNames, textTemplate: t.textTemplate, queries: t.queries,
    similarity: t.similarity, maskRule: t.maskRule, threshold: t.threshold, fraction: t.fraction,
    contextFrames: t.contextFrames, temperature: t.temperature, topK: t.topK, radius: t.radius,
  };
}

export async function probeStore(
  t: ProbeTaskConfig, store: string, spec: Pick<StoreSpec, 'lmTaps' | 'view' | 'projector' | 'encoder'>, common: { model: string; seed: number; threads?: number },
): Promise<{ rows: ResultRow[]; protocol: Record<string, unknown>; missing: string[] }> {
  const base = { ...probeTaskFields(t), store, model: common.model, seed: common.seed, threads: common.threads };
  const family = { values: 'lm.*.attn.v', keys: 'lm.*.attn.k' } as const;
  const lm = await runProbeFlow({ ...base, taps: spec.lmTaps.map((k) => family[k]), layers: 'all', view: spec.view });
  const refTaps = [...(spec.projector ? ['projector.out'] : []), ...(spec.encoder?.taps ?? [])];
  let ref: ProbeFlowResult | undefined;
  // A text query (ImageNet-S class name, RefCOCO expression) is a value vector of the LM: it has no counterpart at the
  // projector output or in a vision encoder, so those tasks get no reference rows (said in the protocol).
  const textQuery = t.task === 'semseg' || t.task === 'refseg';
  if (refTaps.length && !textQuery) ref = await runProbeFlow({ ...base, taps: refTaps, layers: 'all' });
  // Encoder-baseline rows are references (one number per task), not a curve over LM layers.
  const refRows = (ref?.rows ?? []).map((r) => (isBaselineTap(r.tap) ? { ...r, layer: null } : r));
  return {
    rows: [...lm.rows, ...refRows],
    protocol: {
      lm: lm.protocol,
      ...(ref ? { reference: ref.protocol } : {}),
      ...(refTaps.length && textQuery ? { reference: `none: ${t.task}'s text query is an LM value vector; ${refTaps.join(' / ')} have no text counterpart` } : {}),
    },
    missing: [...new Set([...lm.missing, ...(ref?.missing ?? [])])],
  };
}

export interface CurveSummary {
  readonly task: string;
  readonly metric: string;
  /** Tap family with the layer as {L}, e.g. lm.{L}.attn.v. */
  readonly family: string;
  readonly peakLayer: number;
  readonly peakValue: number;
  readonly lastLayer: number;
  readonly lastValue: number;
  /** peakValue - lastValue: how much the last layer loses against the best one. */
  readonly dropAtLast: number;
  /** The layer-less reference rows for the same task and metric (projector.out, siglip.post_norm). */
  readonly reference: Record<string, number>;
}

/** Peak layer, peak value and the drop at the last layer per (task, metric, tap family), seeds averaged. */
export function summariseCurves(rows: readonly ResultRow[]): CurveSummary[] {
  const curves = new Map<string, { task: string; metric: string; family: string; byLayer: Map<number, number[]> }>();
  const refs = new Map<string, Record<string, number[]>>();
  for (const r of rows) {
    if (!Number.isFinite(r.value)) continue;
    const tm = `${r.task}\u0000${r.metric}`;
    if (r.layer === null) {
      const ref = refs.get(tm) ?? refs.set(tm, {}).get(tm)!;
      (ref[r.tap] ??= []).push(r.value);
      continue;
    }
    const family = tapFamily(r.tap);
    const key = `${tm}\u0000${family}`;
    const c = curves.get(key) ?? curves.set(key, { task: r.task, metric: r.metric, family, byLayer: new Map() }).get(key)!;
    (c.byLayer.get(r.layer) ?? c.byLayer.set(r.layer, []).get(r.layer)!).push(r.value);
  }
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  return [...curves.values()].map((c) => {
    const layers = [...c.byLayer.keys()].sort((a, b) => a - b);
    const values = layers.map((l) => mean(c.byLayer.get(l)!));
    let best = 0;
    values.forEach((v, i) => { if (v > values[best]) best = i; });
    const ref = refs.get(`${c.task}\u0000${c.metric}`) ?? {};
    return {
      task: c.task, metric: c.metric, family: c.family, peakLayer: layers[best], peakValue: values[best],
      lastLayer: layers[layers.length - 1], lastValue: values[values.length - 1], dropAtLast: values[best] - values[values.length - 1],
      reference: Object.fromEntries(Object.entries(ref).map(([tap, v]) => [tap, mean(v)])),
    };
  });
}
