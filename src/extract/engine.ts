// The model side of extraction, ONE extractor for every family, over the model interface only
// (VisionLanguageModelApi): one image -> prompt ids, pixels and views (prepare); a batch of prepared images -> every
// requested tap per image, in the layouts the store takes (run).
//
// Per batch: ONE image-path run over every image (encodeImages: tower + projector + packing, vision taps split back
// per image as views), the language model on equal-length prompts as one batch (otherwise image by image, no
// padding, so no padding effects on the numbers), and the encoder baseline tower (--encoder-baseline, any supported
// tower with its own processor) over the same images. What a tap is — producer, layout, CLS tokens, the view it is
// stored on — comes from the tap table through model.tapInfo; the family only contributes data.
//
// Views: the sequence views the family has among the config's (LLaVA: base + highres; Qwen: highres = its native
// grid), plus the tower view its vision taps need (Qwen: "patches"), plus "baseline" (or "siglip" for the old
// siglip.* names) for the encoder baseline.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadVisionModel } from '../models/index.js';
import type { PreparedInputs, VisionLanguageModelApi } from '../models/types.js';
import { loadEncoderBaseline, type EncoderBaseline } from '../models/vision/encoder-baseline.js';
import { resizeRgb } from '../preprocess/pil-resize.js';
import type { RgbImage } from '../preprocess/image.js';
import { viewExtent, type ViewTokens } from '../preprocess/token-map.js';
import type { ImageRecord, TapTensor } from '../store/gather.js';
import { modelIdentity } from '../store/provenance.js';
import { expandHooks, type HookDims } from '../taps/names.js';
import { BASELINE_VIEW, SIGLIP_VIEW, storedViews, tapKind, type ResolvedTap } from '../taps/table.js';
import type { Tensor } from '../tensor/tensor.js';
import { KvlensUsageError } from '../util/errors.js';
import { baselineDir, tapPatterns, type ExtractConfig } from './config.js';

/** One decoded, preprocessed image, ready for the model (the only per-image state held between prepare and run). */
export interface PreparedImage {
  readonly ids: number[];
  /** the family's model inputs (pixels, geometry, token map) */
  readonly inputs: PreparedInputs;
  /** the size the processor saw (after --resolution) */
  readonly size: { readonly height: number; readonly width: number };
  /** the decoded file's size */
  readonly originalSize: { readonly width: number; readonly height: number };
  /** first image-token position */
  readonly imageStart: number;
  readonly views: Record<string, ViewTokens>;
  /** kept only when the encoder baseline is asked for */
  readonly rgb?: RgbImage;
}

export interface TapPlan {
  readonly all: string[];
  /** language-model taps (run on the decoder) */
  readonly lm: string[];
  /** image-path taps other than image.packed (vision.*, projector.out) */
  readonly vision: string[];
  readonly packed: boolean;
  /** encoder-baseline taps (baseline.*, siglip.*) */
  readonly baseline: string[];
}

/** Split requested hooks by the part of the model that produces them (the tap table); refuse what the store cannot hold. */
export function planTaps(patterns: readonly string[], dims: HookDims): TapPlan {
  const all = expandHooks(patterns, dims);
  const plan = { all, lm: [] as string[], vision: [] as string[], packed: false, baseline: [] as string[] };
  for (const n of all) {
    const info = tapKind(n);
    if (info.store.kind === 'none') throw new KvlensUsageError(`tap "${n}" cannot be extracted into a feature store: ${info.store.why}`);
    if (info.producer === 'decoder') plan.lm.push(n);
    else if (info.producer === 'baseline') plan.baseline.push(n);
    else if (info.component === 'packer') plan.packed = true;
    else plan.vision.push(n);
  }
  return plan;
}

export class Extractor {
  private constructor(
    private readonly cfg: ExtractConfig,
    readonly model: VisionLanguageModelApi,
    private readonly baseline: { tower: EncoderBaseline; identity: Record<string, unknown> } | undefined,
    readonly plan: TapPlan,
    private readonly resolved: ReadonlyMap<string, ResolvedTap>,
    /** the store views, in order */
    readonly views: string[],
  ) {}

  static async open(cfg: ExtractConfig): Promise<Extractor> {
    const model = await loadVisionModel(cfg.model, { device: cfg.device });
    const disposables: Array<{ dispose(): Promise<void> }> = [model];
    try {
      const dir = baselineDir(cfg);
      let baseline: Extractor['baseline'];
      if (dir) {
        const tower = await loadEncoderBaseline(dir, { device: cfg.device });
        disposables.push(tower);
        // (SigLIP towers keep the identity stores written with --siglip have, so those resume)
        baseline = {
          tower,
          identity: { ...modelIdentity(dir, cfg.weightsHash), preprocessorSha256: sha256File(join(dir, 'preprocessor_config.json')), ...(tower.kind === 'siglip' ? {} : { modelType: tower.modelType }) },
        };
      }
      const dims: HookDims = { ...model.dims, ...(baseline ? { baselineLayers: baseline.tower.layers } : {}) };
      const plan = planTaps(tapPatterns(cfg), dims);
      if (plan.baseline.length && !baseline) throw new KvlensUsageError(`taps ${plan.baseline.join(', ')} need --encoder-baseline <vision tower dir>`);
      const resolved = new Map(plan.vision.map((n) => [n, model.tapInfo(n)]));
      const views = storeViews(cfg, model, plan, resolved);
      return new Extractor(cfg, model, baseline, plan, resolved, views);
    } catch (e) {
      for (const d of disposables) await d.dispose();
      throw e;
    }
  }

  /** The prompt exactly as tokenised, with one image placeholder (recorded in the store's identity). */
  promptTemplate(): string {
    return this.model.renderPrompt(this.promptInput(), 1);
  }

  /** Everything besides model and prompt that changes the stored numbers (the store refuses a run that differs). */
  processorIdentity(): Record<string, unknown> {
    return {
      // LLaVA-OneVision stores written before the one extractor carry no family field; keep their identity as it was.
      ...(this.model.family === 'llava_onevision' ? {} : { family: this.model.family }),
      imageProcessorSha256: sha256File(this.model.imageProcessorFile),
      chatTemplateSource: this.model.chatTemplateSource.startsWith('builtin:') ? this.model.chatTemplateSource : 'checkpoint',
      resolution: this.cfg.resolution ?? null,
      batchSize: this.cfg.batchSize,
      siglip: this.baseline?.identity ?? null,
    };
  }

  /** `prefix`: this image's own prefix (per-image prefixes), replacing the config's. */
  async prepare(rgb: RgbImage, prefix?: string): Promise<PreparedImage> {
    const img = this.cfg.resolution ? resizeRgb(rgb, this.cfg.resolution, this.cfg.resolution, 'bicubic') : rgb;
    const inputs = await this.model.prepare({ images: [img], ...this.promptInput(prefix) });
    const all = this.model.imageViews(inputs, 0);
    const views: Record<string, ViewTokens> = {};
    // each sequence view with its pixel extent where its tokens do not read the whole image (recorded in the store:
    // correspondence maps points with it; absent = the whole image, so grids that fill it keep their manifests as before)
    for (const v of this.views) {
      if (!all[v]) continue;
      const extent = viewExtent(inputs.tokenMap, v, { width: img.width, height: img.height });
      views[v] = extent && (extent.x < 1 || extent.y < 1) ? { ...all[v], extent } : all[v];
    }
    if (this.plan.baseline.length) {
      const side = this.baseline!.tower.patchesPerSide;
      const grid = { rows: side, cols: side, positions: Array.from({ length: side * side }, (_, k) => k) };
      for (const v of this.views) if (v === BASELINE_VIEW || v === SIGLIP_VIEW) views[v] = grid;
    }
    return {
      ids: Array.from(inputs.inputIds.data, Number),
      inputs,
      size: { height: img.height, width: img.width },
      originalSize: { width: rgb.width, height: rgb.height },
      imageStart: inputs.tokenMap.runs[0].start,
      views,
      ...(this.plan.baseline.length ? { rgb: img } : {}),
    };
  }

  /** Run a batch; returns, per image, every tap in the store's layouts (views into the model outputs, no copies). */
  async run(batch: readonly PreparedImage[]): Promise<Array<Map<string, TapTensor>>> {
    const results = batch.map(() => new Map<string, TapTensor>());
    const encoded = await this.model.encodeImages(batch.map((b) => b.inputs), this.plan.vision);
    encoded.forEach((e, i) => {
      const origin = batch[i].imageStart;
      if (this.plan.packed) results[i].set('image.packed', { shape: e.packed.shape, data: e.packed.data, origin });
      for (const name of this.plan.vision) {
        const r = this.resolved.get(name)!;
        const t = e.taps.get(name)!;
        // tiles: grid after the CLS tokens of tile 0; rows: merged-token rows sit at the image's sequence positions,
        // patch rows are indexed by the tower view's own positions
        const o = r.layout === 'tiles' ? r.clsTokens : r.info.component === 'projector' ? origin : 0;
        results[i].set(name, { shape: t.shape, data: t.data as Float32Array, origin: o });
      }
    });
    if (this.plan.lm.length) await this.runLm(batch, encoded, results);
    if (this.plan.baseline.length) await this.runBaseline(batch, results);
    return results;
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
    await this.baseline?.tower.dispose();
  }

  private promptInput(prefix: string = this.cfg.prefix) {
    if (this.cfg.promptText !== undefined) return { text: this.cfg.promptText };
    return { question: this.cfg.question, prefix, ...(this.cfg.systemPrompt !== undefined ? { systemPrompt: this.cfg.systemPrompt } : {}) };
  }

  /** Equal-length prompts run as one batch; otherwise image by image (no padding, so no padding effects on the numbers). */
  private async runLm(batch: readonly PreparedImage[], encoded: Awaited<ReturnType<VisionLanguageModelApi['encodeImages']>>, results: Array<Map<string, TapTensor>>): Promise<void> {
    const S = batch[0].ids.length;
    const groups = batch.every((b) => b.ids.length === S) ? [batch.map((_, i) => i)] : batch.map((_, i) => [i]);
    for (const g of groups) {
      const taps = await this.model.captureTaps({ inputIds: g.map((i) => batch[i].ids), images: g.map((i) => encoded[i]), taps: this.plan.lm });
      for (const [name, t] of taps) {
        const heads = this.model.tapInfo(name).heads;
        g.forEach((img, b) => results[img].set(name, { ...batchRow(t, b), heads }));
      }
    }
  }

  private async runBaseline(batch: readonly PreparedImage[], results: Array<Map<string, TapTensor>>): Promise<void> {
    const tower = this.baseline!.tower;
    const pixel = tower.preprocess(batch.map((b) => b.rgb!)); // [n, 3, S, S]
    const out = await tower.run(pixel, this.plan.baseline);
    for (const [name, t] of out) batch.forEach((_, i) => results[i].set(name, { ...batchRow(t, i), origin: tower.clsTokens }));
  }
}

/** The store views of a run: the family's sequence views among the config's, then the tower and baseline views taps need. */
function storeViews(cfg: ExtractConfig, model: VisionLanguageModelApi, plan: TapPlan, resolved: ReadonlyMap<string, ResolvedTap>): string[] {
  const seq = model.spec.views.filter((v) => v.positions === 'sequence').map((v) => v.name);
  const views: string[] = cfg.views.filter((v) => seq.includes(v));
  if (!views.length) throw new KvlensUsageError(`views ${cfg.views.join(', ')}: ${model.family} has view(s) ${seq.join(', ')}`);
  for (const r of resolved.values()) {
    const v = r.towerView!;
    const isTower = model.spec.views.some((s) => s.name === v && s.positions === 'tower');
    if (isTower) {
      if (!views.includes(v)) views.push(v);
    } else if (!views.includes(v)) {
      throw new KvlensUsageError(`tap "${r.name}" is stored on the ${model.family} "${v}" view; add it to --views`);
    }
  }
  for (const n of plan.baseline) {
    const v = tapKind(n).store.kind === 'firstOf' ? (tapKind(n).store as { views: readonly string[] }).views[0] : BASELINE_VIEW;
    if (!views.includes(v)) views.push(v);
  }
  // every tap must land on a view of this store (the reader finds it there by the same rule)
  for (const n of plan.all) {
    if (!storedViews(n, views).length) throw new KvlensUsageError(`tap "${n}" holds none of the store's views [${views.join(', ')}]`);
  }
  for (const [n, r] of resolved) {
    const held = storedViews(n, views);
    if (held.length !== 1 || held[0] !== r.towerView) {
      throw new KvlensUsageError(`tap "${n}": the ${model.family} stores it on "${r.towerView}", but with views [${views.join(', ')}] the store would put it on [${held.join(', ')}]`);
    }
  }
  return views;
}

/** Row b of a [batch, ...] tensor as [1, ...] (a view, no copy). */
function batchRow(t: Tensor, b: number): { shape: number[]; data: Float32Array } {
  const per = t.data.length / t.shape[0];
  return { shape: [1, ...t.shape.slice(1)], data: (t.data as Float32Array).subarray(b * per, (b + 1) * per) };
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The extractor for a config (every family). */
export function openExtractor(cfg: ExtractConfig): Promise<Extractor> {
  return Extractor.open(cfg);
}

export type { ImageRecord };
