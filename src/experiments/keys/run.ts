// runKeyVariance: the input-agnostic-keys analysis end to end.
//
//   keys of many images (a feature store, read a layer at a time; or live forwards of the model, image by image)
//     -> per (layer, position) Welford state (resumable from a state file, mergeable across shards)
//     -> variance per position, τ (fixed or automatic), input-agnostic positions and histogram per layer
//     -> results/key_variance.json (src/results format) + variance maps + flagged / random-control sets for blocking.
//
//   const run = await runKeyVariance({ store: 'runs/coco-keys' }, { threshold: 'auto', blockLayers: '-10:', out: 'runs/r1' });
//   const specs = blockSpecsForPrompt(run.flagged, prepared.tokenMap);   // per benchmark prompt (blocking.ts)

import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { parseExtractConfig } from '../../extract/config.js';
import { openExtractor } from '../../extract/engine.js';
import { listImages, type ImageItem } from '../../extract/sources.js';
import { writeRun } from '../../results/rundir.js';
import type { KeyVariance } from '../../results/schema.js';
import { gatherGrid, tapLayout, type TapTensor, type ViewTokens } from '../../store/gather.js';
import { FeatureStore } from '../../store/reader.js';
import { DEVICES } from '../../runtime/device.js';
import { selectLayers } from '../../taps/names.js';
import { KvlensInputError, KvlensUsageError } from '../../util/errors.js';
import { randomControl, type FlaggedKeys } from './blocking.js';
import { KeyVarianceState } from './state.js';
import { GridGroups, GROUPED_VIEW } from './groups.js';
import { chooseThreshold, histogram, type ThresholdChoice } from './threshold.js';
import { checkSameGrid, VARIANCE_DEFINITION, type KeyGridShape } from './variance.js';

export const KEY_TAP_PATTERN = 'lm.{L}.attn.k';
const keyTap = (layer: number) => `lm.${layer}.attn.k`;

export const KeyVarianceConfigSchema = z.object({
  /** Layers to analyse: "*" (every stored / model layer), "3-5", "0,7,14", "-10:". */
  layers: z.string().min(1).default('*'),
  /** The token-map view whose grid positions are compared across images. */
  view: z.enum(['base', 'highres']).default('base'),
  statistic: z.enum(['sum', 'mean']).default('sum'),
  /** A fixed τ (e.g. 450 for LLaVA-OneVision 7B's summed statistic) or "auto" (bimodal valley, Otsu fallback). */
  threshold: z.union([z.number().nonnegative(), z.literal('auto')]).default('auto'),
  /** Layers to block (relative to the model's LM layers): default the last 10. */
  blockLayers: z.string().min(1).default('-10:'),
  /**
   * Also flag positions on every other view the images have (LLaVA families: the high-resolution grid besides the base
   * tile), each view from its OWN per-position variance with the same τ (no carry-over of one view's flags to another
   * grid): what a blocking run with blockViews 'all' blocks. Written to key_variance.json otherViews.
   */
  allViews: z.boolean().default(false),
  /**
   * With allViews on native-resolution images (a live source without `resolution`): the high-res view's variance per
   * high-res grid shape, each shape a group of its own (groups.ts), flagged against the same τ. The analysed view must
   * be 'base' (its grid is fixed); a model whose only grid is the high-res one (Qwen2-VL) cannot be grouped this way.
   */
  groupHighres: z.boolean().default(false),
  /** groupHighres: groups with fewer images are recorded in key_variance.json but not used for blocking. */
  minGroupImages: z.number().int().positive().default(10),
  /** Seed of the random control set. */
  randomSeed: z.number().int().default(0),
  /** Bins of the per-layer histograms in the result (linear in variance, as the report draws them). */
  histogramBins: z.number().int().min(2).max(1000).default(40),
  /** Also record the per-KV-head variance maps. */
  perHead: z.boolean().default(false),
  /** State file: saved every `checkpointEvery` images and at the end; an existing one is resumed. */
  state: z.string().min(1).optional(),
  checkpointEvery: z.number().int().positive().default(50),
  /** Only the first N images. */
  limit: z.number().int().positive().optional(),
  /** Model name for the result (default: the model directory's name). */
  model: z.string().min(1).optional(),
  /** Image set description for the result (default: the store roots / image spec). */
  imageSource: z.string().min(1).optional(),
  /** Run directory: results/key_variance.json is written there (atomically). */
  out: z.string().min(1).optional(),
}).strict();

export type KeyVarianceConfig = z.infer<typeof KeyVarianceConfigSchema>;
export type KeyVarianceConfigInput = z.input<typeof KeyVarianceConfigSchema>;

/** Where the keys come from. */
export type KeySource =
  | { readonly store: FeatureStore | string | readonly string[]; readonly images?: readonly string[] }
  | {
    readonly live: {
      /** Model directory (any family loadModel opens). */
      readonly model: string;
      /** Image spec as for `kvlens extract` (directory, list file, dataset:...), or pre-listed items. */
      readonly images: string | readonly ImageItem[];
      /** Square resize before the processor, so every image gives the same high-res grid. */
      readonly resolution?: number;
      readonly device?: (typeof DEVICES)[number];
      readonly prefix?: string;
      readonly question?: string;
      readonly systemPrompt?: string | null;
      /** A finished prompt (template applied) with one image placeholder, used verbatim: e.g. the benchmark prompt. */
      readonly text?: string;
    };
  };

export interface VarianceMap {
  readonly layer: number;
  readonly rows: number;
  readonly cols: number;
  /** [rows, cols] row-major */
  readonly variance: Float64Array;
}

export interface KeyVarianceRun {
  readonly result: KeyVariance;
  readonly maps: readonly VarianceMap[];
  readonly threshold: ThresholdChoice;
  /** Input-agnostic positions of the block layers: feed to blockSpecsForPrompt. */
  readonly flagged: FlaggedKeys;
  /** The seeded control with the same count per layer. */
  readonly random: FlaggedKeys;
  readonly state: KeyVarianceState;
  /** allViews: the flagged / control sets of the other views (each from its own variance), and their maps. */
  readonly otherViews: ReadonlyArray<{
    readonly flagged: FlaggedKeys; readonly random: FlaggedKeys; readonly maps: readonly VarianceMap[];
    /** groupHighres: this entry is one high-res grid shape's group. */
    readonly group?: { readonly nImages: number; readonly minImages: number; readonly used: boolean };
  }>;
}

export interface KeyVarianceHooks {
  /** After each image is accumulated (per layer for a store, all layers at once when live). */
  readonly onProgress?: (e: { layer: number | null; done: number; total: number }) => void;
}

export async function runKeyVariance(source: KeySource, input: KeyVarianceConfigInput = {}, hooks: KeyVarianceHooks = {}): Promise<KeyVarianceRun> {
  const parsed = KeyVarianceConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KvlensUsageError(`key-variance config field "${issue.path.join('.') || '(root)'}": ${issue.message}`);
  }
  const cfg = parsed.data;
  if (cfg.groupHighres) {
    if (!cfg.allViews) throw new KvlensUsageError('key-variance config field "groupHighres": needs allViews (the grouped view is the high-res grid beside the base view)');
    if (cfg.view !== 'base') {
      throw new KvlensUsageError(`key-variance config field "groupHighres": the analysed view must be "base" (fixed grid), not "${cfg.view}"; a model whose only grid is the ` +
        'high-res one (Qwen2-VL: one native grid per image) has no base view to anchor τ: give it a fixed resolution instead');
    }
    if ('store' in source) throw new KvlensUsageError('key-variance config field "groupHighres": needs a live key source (native-resolution forwards)');
    if (source.live.resolution !== undefined) throw new KvlensUsageError(`key-variance config field "groupHighres": images are resized to ${source.live.resolution} px, so there is one high-res grid; leave resolution unset (native)`);
  }
  const acc = 'store' in source ? accumulateFromStoreViews(source, cfg, hooks) : await accumulateLive(source.live, cfg, hooks);
  const run = summarise(acc.state, cfg, acc.info, acc.others);
  if (cfg.out) await writeRun.keyVariance(cfg.out, run.result);
  return run;
}

interface SourceInfo {
  readonly model: string;
  readonly imageSource: string;
  /** The model's LM layer count ('-10:' is relative to it). */
  readonly lmLayers: number;
  /** The fixed resize of a live run (recorded in the result). */
  readonly resize?: KeyVariance['resize'];
  /** The prompt text of a live run, as tokenised (recorded in the result). */
  readonly prompt?: string;
}

/** The state file of another view's accumulator (allViews): beside the main one. */
const viewStatePath = (path: string | undefined, view: string) => (path ? `${path}.${view}` : undefined);

/** The store's keys of `cfg.view`, and with allViews of every other view the key tap is stored for, each on its own. */
function accumulateFromStoreViews(
  source: Extract<KeySource, { store: unknown }>, cfg: KeyVarianceConfig, hooks: KeyVarianceHooks,
): { state: KeyVarianceState; info: SourceInfo; others: KeyVarianceState[] } {
  const owned = !(source.store instanceof FeatureStore);
  const store = source.store instanceof FeatureStore ? source.store : FeatureStore.open(source.store as string | string[]);
  try {
    const main = accumulateFromStore({ ...source, store }, cfg, hooks);
    const others: KeyVarianceState[] = [];
    if (cfg.allViews) {
      const first = source.images?.[0] ?? store.images()[0];
      const views = first === undefined ? [] : Object.keys(store.image(first).views).filter((v) => v !== cfg.view && (v === 'base' || v === 'highres'));
      for (const v of views) others.push(accumulateFromStore({ ...source, store }, { ...cfg, view: v as KeyVarianceConfig['view'], state: viewStatePath(cfg.state, v) }, hooks).state);
    }
    return { ...main, others };
  } finally {
    if (owned) store.close();
  }
}

// ---- store: a layer at a time over every image ----

function accumulateFromStore(
  source: Extract<KeySource, { store: unknown }>, cfg: KeyVarianceConfig, hooks: KeyVarianceHooks,
): { state: KeyVarianceState; info: SourceInfo } {
  const owned = !(source.store instanceof FeatureStore);
  const store = source.store instanceof FeatureStore ? source.store : FeatureStore.open(source.store as string | string[]);
  try {
    const stored = store.layers('attn.k');
    if (stored.length === 0) throw new KvlensInputError(`the store holds no keys (${KEY_TAP_PATTERN}); extract with --taps keys`, store.roots.join(', '));
    const lmLayers = modelLayerCount(store.identity.model.path) ?? stored[stored.length - 1] + 1;
    const layers = cfg.layers === '*' ? stored : selectLayers(cfg.layers, lmLayers, `layers ${cfg.layers}`);
    const missing = layers.filter((l) => !stored.includes(l));
    if (missing.length) throw new KvlensInputError(`layer(s) ${missing.join(', ')} have no stored keys; the store holds ${KEY_TAP_PATTERN} for layers [${stored.join(', ')}]`, store.roots.join(', '));
    let ids = source.images ? [...source.images] : store.images();
    if (cfg.limit !== undefined) ids = ids.slice(0, cfg.limit);
    if (ids.length === 0) throw new KvlensInputError('no images to analyse', store.roots.join(', '));
    // Every image must give the same grid: checked from the manifest before any tensor is read.
    const grids = ids.map((id) => {
      const g = store.image(id).views[cfg.view];
      if (!g) throw new KvlensInputError(`image "${id}" has no "${cfg.view}" view in the store`, store.roots.join(', '));
      return { imageId: id, rows: g.rows, cols: g.cols };
    });
    for (const g of grids) checkSameGrid(grids[0], g, cfg.view, store.roots.join(', '));
    const dims = store.tapDims(keyTap(layers[0]));
    const shape: KeyGridShape = { rows: grids[0].rows, cols: grids[0].cols, heads: dims.heads, headDim: dims.headDim };
    const state = openState(cfg, { tap: KEY_TAP_PATTERN, view: cfg.view, shape, imageIds: ids }, layers);
    for (const l of layers) {
      const w = state.layer(l);
      const tap = keyTap(l);
      for (let i = w.n; i < ids.length; i++) {
        w.add(store.read(ids[i], tap, { view: cfg.view }).data); // [rows, cols, kvHead*dHead]
        hooks.onProgress?.({ layer: l, done: i + 1, total: ids.length });
        if (cfg.state && (i + 1) % cfg.checkpointEvery === 0) state.save(cfg.state);
      }
    }
    if (cfg.state) state.save(cfg.state);
    return {
      state,
      info: {
        model: cfg.model ?? basename(store.identity.model.path), imageSource: cfg.imageSource ?? `feature store ${store.roots.join(', ')}`, lmLayers,
      },
    };
  } finally {
    if (owned) store.close();
  }
}

// ---- live: forward each image once, every layer's keys at once ----

async function accumulateLive(
  live: Extract<KeySource, { live: unknown }>['live'], cfg: KeyVarianceConfig, hooks: KeyVarianceHooks,
): Promise<{ state: KeyVarianceState; info: SourceInfo; others: KeyVarianceState[] }> {
  const lmLayers = modelLayerCount(live.model);
  if (lmLayers === undefined) throw new KvlensInputError('cannot read text_config.num_hidden_layers', join(live.model, 'config.json'));
  const layers = selectLayers(cfg.layers, lmLayers, `layers ${cfg.layers}`);
  const extractCfg = parseExtractConfig({
    model: live.model, images: typeof live.images === 'string' ? live.images : '(listed)', out: '(not written)',
    taps: [`lm.{${layers.join(',')}}.attn.k`], views: cfg.allViews ? ['base', 'highres'] : [cfg.view], dtype: 'float32', resolution: live.resolution,
    device: live.device, prefix: live.prefix, question: live.question, systemPrompt: live.systemPrompt,
    ...(live.text !== undefined ? { promptText: live.text } : {}),
  });
  let items = typeof live.images === 'string' ? await listImages(live.images) : [...live.images];
  if (cfg.limit !== undefined) items = items.slice(0, cfg.limit);
  if (items.length === 0) throw new KvlensInputError('no images to analyse', typeof live.images === 'string' ? live.images : 'images');
  const engine = await openExtractor(extractCfg);
  try {
    const ids = items.map((it) => it.id);
    const where = typeof live.images === 'string' ? live.images : undefined;
    // One accumulator per view: cfg.view first, then (allViews) every other grid view the images have. Each resumes
    // from its own state file; a live run advances every layer of every view together.
    const views = new Map<string, { path?: string; state?: KeyVarianceState; first?: { imageId: string; rows: number; cols: number } }>();
    const track = (view: string) => {
      const path = view === cfg.view ? cfg.state : viewStatePath(cfg.state, view);
      const state = path && existsSync(path) ? KeyVarianceState.load(path) : undefined;
      if (state) {
        checkResumable(state, { tap: KEY_TAP_PATTERN, view, imageIds: ids }, layers, path!);
        const n = state.layers.values().next().value!.n;
        if ([...state.layers.values()].some((w) => w.n !== n)) throw new KvlensInputError('layers of this state hold different image counts; it was not written by a live run', path!);
      }
      views.set(view, { path, state, first: state ? { imageId: ids[0], rows: state.meta.shape.rows, cols: state.meta.shape.cols } : undefined });
    };
    track(cfg.view);
    if (cfg.allViews) {
      // the other grid views the images have, from the first image's token map (preprocessing only)
      const probe = await engine.prepare(await items[0].load());
      for (const v of Object.keys(probe.views)) if (v !== cfg.view && (v === 'base' || v === 'highres') && !(cfg.groupHighres && v === GROUPED_VIEW)) track(v);
      if (cfg.groupHighres && !probe.views[GROUPED_VIEW]) throw new KvlensInputError(`groupHighres: image "${items[0].id}" has no "${GROUPED_VIEW}" view`, where ?? 'images');
    }
    const count = (v: { state?: KeyVarianceState }) => (v.state ? v.state.layers.values().next().value!.n : 0);
    const counts = [...views.values()].map(count);
    if (counts.some((n) => n !== counts[0])) {
      throw new KvlensInputError(`the views' state files hold different image counts (${[...views.keys()].map((v, k) => `${v}: ${counts[k]}`).join(', ')}); delete them to start over`, cfg.state ?? 'state');
    }
    const groups = cfg.groupHighres ? GridGroups.open(KEY_TAP_PATTERN, layers, cfg.state, ids, counts[0]) : undefined;
    for (let i = counts[0]; i < items.length; i++) {
      const prepared = await engine.prepare(await items[i].load());
      const [taps] = await engine.run([prepared]);
      if (groups) {
        const v = prepared.views[GROUPED_VIEW];
        if (!v) throw new KvlensInputError(`image "${items[i].id}" has no "${GROUPED_VIEW}" view (the first image has one)`, where ?? 'images');
        groups.add(items[i].id, taps, v, accumulateTaps);
        if (cfg.state && (i + 1) % cfg.checkpointEvery === 0) groups.save();
      }
      for (const [view, entry] of views) {
        const v = prepared.views[view];
        if (!v) throw new KvlensInputError(`image "${items[i].id}" has no "${view}" view (the first image has one)`, where ?? 'images');
        const here = { imageId: items[i].id, rows: v.rows, cols: v.cols };
        if (entry.first) checkSameGrid(entry.first, here, view, where);
        entry.first ??= here;
        if (!entry.state) {
          const t = taps.get(keyTap(layers[0]))!; // [1, kvHead, pos, dHead]
          const shape: KeyGridShape = { rows: v.rows, cols: v.cols, heads: t.shape[1], headDim: t.shape[3] };
          entry.state = new KeyVarianceState({ tap: KEY_TAP_PATTERN, view, shape, imageIds: ids }, layers);
        }
        accumulateTaps(entry.state, taps, v);
        if (entry.path && (i + 1) % cfg.checkpointEvery === 0) entry.state.save(entry.path);
      }
      hooks.onProgress?.({ layer: null, done: i + 1, total: items.length });
    }
    for (const entry of views.values()) if (entry.path) entry.state!.save(entry.path);
    groups?.save();
    const [main, ...others] = [...views.values()].map((e) => e.state!);
    if (groups) others.push(...groups.states());
    return {
      state: main,
      others,
      info: {
        model: cfg.model ?? basename(live.model), imageSource: cfg.imageSource ?? (typeof live.images === 'string' ? live.images : `${items.length} listed images`), lmLayers,
        ...(live.resolution ? { resize: fixedResize(live.resolution) } : {}),
        ...(live.text !== undefined ? { prompt: live.text } : {}),
      },
    };
  } finally {
    await engine.dispose();
  }
}

/**
 * Add one image's keys from a live forward: `taps` holds lm.{L}.attn.k as [1, kvHead, pos, dHead] for every layer of
 * the state; `view` says which sequence positions form the grid (the processor's token map for that view).
 */
export function accumulateTaps(state: KeyVarianceState, taps: ReadonlyMap<string, TapTensor>, view: ViewTokens): void {
  const { rows, cols } = state.meta.shape;
  if (view.rows !== rows || view.cols !== cols) {
    checkSameGrid({ imageId: state.meta.imageIds[0] ?? '(first image)', rows, cols }, { imageId: '(this image)', rows: view.rows, cols: view.cols }, state.meta.view);
  }
  for (const [l, w] of state.layers) {
    const tap = keyTap(l);
    const t = taps.get(tap);
    if (!t) throw new KvlensUsageError(`accumulateTaps: the forward did not return ${tap}`);
    w.add(gatherGrid(t, tapLayout(tap, t), view)); // [rows, cols, kvHead*dHead]
  }
}

function openState(cfg: KeyVarianceConfig, meta: KeyVarianceState['meta'], layers: readonly number[]): KeyVarianceState {
  if (!cfg.state || !existsSync(cfg.state)) return new KeyVarianceState(meta, layers);
  const state = KeyVarianceState.load(cfg.state);
  checkResumable(state, meta, layers, cfg.state);
  const s = state.meta.shape;
  const m = meta.shape;
  if (s.rows !== m.rows || s.cols !== m.cols || s.heads !== m.heads || s.headDim !== m.headDim) {
    throw new KvlensInputError(`the state is for a ${s.rows}x${s.cols} grid of ${s.heads}x${s.headDim} keys, this run has ${m.rows}x${m.cols} of ${m.heads}x${m.headDim}`, cfg.state);
  }
  return state;
}

/** A state resumes only the same analysis: same keys, view, layers and ordered image list. */
function checkResumable(state: KeyVarianceState, meta: Pick<KeyVarianceState['meta'], 'tap' | 'view' | 'imageIds'>, layers: readonly number[], path: string): void {
  if (state.meta.tap !== meta.tap || state.meta.view !== meta.view) throw new KvlensInputError(`the state is for ${state.meta.tap} (${state.meta.view}), this run analyses ${meta.tap} (${meta.view})`, path);
  const have = [...state.layers.keys()].sort((a, b) => a - b).join(',');
  const want = [...layers].sort((a, b) => a - b).join(',');
  if (have !== want) throw new KvlensInputError(`the state covers layers [${have}], this run analyses [${want}]`, path);
  const a = state.meta.imageIds;
  const b = meta.imageIds;
  const diff = a.length !== b.length ? -1 : a.findIndex((id, i) => id !== b[i]);
  if (a.length !== b.length || diff >= 0) {
    throw new KvlensInputError(`the state was computed over another image list (${a.length} images${diff >= 0 ? `, image ${diff} is "${a[diff]}" vs "${b[diff]}"` : ` vs ${b.length}`}); ` +
      'delete it to start over', path);
  }
}

/** The square resize every image gets before the processor in a live run (extract/config's --resolution: bicubic). */
export function fixedResize(side: number): NonNullable<KeyVariance['resize']> {
  return {
    width: side, height: side, filter: 'bicubic',
    note: `every image resized to ${side}x${side} px before the processor, so all give the same grid (native-resolution families such as Qwen2.5-VL would otherwise give each image its own)`,
  };
}

/** text_config.num_hidden_layers of a checkpoint's config.json, when readable. */
function modelLayerCount(dir: string): number | undefined {
  try {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { text_config?: { num_hidden_layers?: unknown }; num_hidden_layers?: unknown };
    const n = c.text_config?.num_hidden_layers ?? c.num_hidden_layers;
    return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

// ---- from the state to the result ----

/** Variance per layer, τ over all analysed layers, flagged positions, histograms, and the block / control sets. */
export function summarise(state: KeyVarianceState, cfg: KeyVarianceConfig, info: SourceInfo, others: readonly KeyVarianceState[] = []): KeyVarianceRun {
  if (!state.complete) throw new KvlensUsageError('the key-variance state is incomplete (some layer has not seen every image)');
  const { rows, cols } = state.meta.shape;
  const layers = [...state.layers.keys()].sort((a, b) => a - b);
  const maps: VarianceMap[] = layers.map((layer) => ({ layer, rows, cols, variance: state.layer(layer).variance(cfg.statistic) }));
  const pooled = new Float64Array(maps.length * rows * cols);
  maps.forEach((m, i) => pooled.set(m.variance, i * rows * cols));
  const threshold = chooseThreshold(pooled, cfg.threshold);
  const flaggedAt = (v: Float64Array) => Array.from(v.keys()).filter((p) => v[p] < threshold.value);

  const blockLayers = selectLayers(cfg.blockLayers, info.lmLayers, `blockLayers ${cfg.blockLayers}`);
  const unanalysed = blockLayers.filter((l) => !state.layers.has(l));
  if (unanalysed.length) throw new KvlensUsageError(`blockLayers ${cfg.blockLayers} includes layer(s) ${unanalysed.join(', ')} whose key variance was not computed (analysed: ${layers.join(', ')})`);
  const flagged: FlaggedKeys = {
    view: state.meta.view, grid: { rows, cols },
    layers: blockLayers.map((layer) => ({ layer, positions: flaggedAt(maps[layers.indexOf(layer)].variance) })),
  };
  const random = randomControl(flagged, cfg.randomSeed);
  const result: KeyVariance = {
    model: info.model,
    tap: state.meta.tap,
    statistic: cfg.statistic,
    nImages: state.meta.imageIds.length,
    imageSource: info.imageSource,
    grid: { rows, cols },
    threshold: { value: threshold.value, method: threshold.method, note: threshold.note },
    blockedLayers: blockLayers,
    view: state.meta.view,
    ...(info.resize ? { resize: info.resize } : {}),
    ...(info.prompt !== undefined ? { prompt: info.prompt } : {}),
    definition: VARIANCE_DEFINITION,
    randomControl: { seed: cfg.randomSeed, layers: random.layers.map((l) => ({ layer: l.layer, positions: [...l.positions] })) },
    layers: maps.map((m) => ({
      layer: m.layer,
      variance: Array.from(m.variance),
      histogram: histogram(m.variance, cfg.histogramBins),
      inputAgnostic: flaggedAt(m.variance),
      ...(cfg.perHead ? { headVariance: state.layer(m.layer).headVariance(cfg.statistic).map((h) => Array.from(h)) } : {}),
    })),
  };
  // Other views (allViews): each view's positions flagged from its own variance against the same τ (τ is a value of
  // the key statistic, not of a grid), with its own seeded control; the main view's fields above stay as they were.
  const other = others.map((st) => {
    if (!st.complete) throw new KvlensUsageError(`the "${st.meta.view}" key-variance state is incomplete`);
    const g = { rows: st.meta.shape.rows, cols: st.meta.shape.cols };
    const vmaps: VarianceMap[] = layers.map((layer) => ({ layer, ...g, variance: st.layer(layer).variance(cfg.statistic) }));
    const grouped = cfg.groupHighres && st.meta.view === GROUPED_VIEW;
    const nImages = st.meta.imageIds.length;
    const vflagged: FlaggedKeys = {
      view: st.meta.view, grid: g, layers: blockLayers.map((layer) => ({ layer, positions: flaggedAt(vmaps[layers.indexOf(layer)].variance) })),
      ...(grouped ? { grouped: true } : {}),
    };
    const group = grouped ? { nImages, minImages: cfg.minGroupImages, used: nImages >= cfg.minGroupImages } : undefined;
    return { flagged: vflagged, random: randomControl(vflagged, cfg.randomSeed), maps: vmaps, ...(group ? { group } : {}) };
  });
  // allViews records the list even when empty (a model with one grid view): 'all' then blocks what 'base' blocks
  if (cfg.allViews) {
    result.otherViews = other.map((o) => ({
      view: o.flagged.view, grid: o.flagged.grid,
      ...(o.group ? { group: o.group } : {}),
      randomControl: { seed: cfg.randomSeed, layers: o.random.layers.map((l) => ({ layer: l.layer, positions: [...l.positions] })) },
      layers: o.maps.map((m) => ({ layer: m.layer, variance: Array.from(m.variance), histogram: histogram(m.variance, cfg.histogramBins), inputAgnostic: flaggedAt(m.variance) })),
    }));
  }
  return { result, maps, threshold, flagged, random, state, otherViews: other };
}

/** The flagged / control sets from a written key_variance.json (what a benchmark run reads back). */
export function flaggedFromResult(kv: KeyVariance, layers: readonly number[] = kv.blockedLayers): { flagged: FlaggedKeys; random?: FlaggedKeys } {
  const view = kv.view ?? 'base';
  const pick = (l: number) => {
    const entry = kv.layers.find((x) => x.layer === l);
    if (!entry) throw new KvlensInputError(`key_variance.json has no layer ${l}`, 'results/key_variance.json');
    return { layer: l, positions: [...entry.inputAgnostic] };
  };
  const flagged: FlaggedKeys = { view, grid: kv.grid, layers: layers.map(pick) };
  const rc = kv.randomControl;
  const random = rc ? { view, grid: kv.grid, layers: rc.layers.filter((l) => layers.includes(l.layer)).map((l) => ({ layer: l.layer, positions: [...l.positions] })) } : undefined;
  return { flagged, random };
}

/**
 * The flagged sets of every view a key_variance.json holds (its main view, then otherViews), for blockViews 'all'.
 * Each control is drawn again from that view's flagged set with the keys run's seed (as blockingSets does for one view).
 */
export function flaggedViewsFromResult(kv: KeyVariance, layers: readonly number[], seed: number): { flagged: FlaggedKeys[]; random: FlaggedKeys[] } {
  if (!kv.otherViews) {
    throw new KvlensInputError(`key_variance.json holds only the "${kv.view ?? 'base'}" view; blockViews 'all' needs every view's flags: compute it with allViews (keys: allViews: true, or blockViews: all with keys in the run)`, 'results/key_variance.json');
  }
  const { flagged: main } = flaggedFromResult(kv, layers);
  // grid groups below their minimum image count are recorded, not used; a grouped view needs one usable group
  const grouped = new Set(kv.otherViews.filter((o) => o.group).map((o) => o.view));
  for (const v of grouped) {
    if (!kv.otherViews.some((o) => o.view === v && o.group?.used)) {
      throw new KvlensInputError(`key_variance.json's "${v}" view has no grid group with at least ${kv.otherViews.find((o) => o.view === v)!.group!.minImages} images ` +
        `(groups: ${kv.otherViews.filter((o) => o.view === v).map((o) => `${o.grid.rows}x${o.grid.cols}: ${o.group!.nImages}`).join(', ')}); compute it over more images or lower minGroupImages`, 'results/key_variance.json');
    }
  }
  const others = kv.otherViews.filter((o) => !o.group || o.group.used).map((o): FlaggedKeys => ({
    view: o.view, grid: o.grid, ...(o.group ? { grouped: true } : {}),
    layers: layers.map((l) => {
      const entry = o.layers.find((x) => x.layer === l);
      if (!entry) throw new KvlensInputError(`key_variance.json's "${o.view}" view has no layer ${l}`, 'results/key_variance.json');
      return { layer: l, positions: [...entry.inputAgnostic] };
    }),
  }));
  const flagged = [main, ...others];
  const seedOf = kv.randomControl?.seed ?? seed;
  return { flagged, random: flagged.map((f) => randomControl(f, seedOf)) };
}
