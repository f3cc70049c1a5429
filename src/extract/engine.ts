// The model side of extraction: one image -> prompt ids, pixels and token map (prepare); a batch of prepared images
// -> every requested tap per image, in the layouts the store takes (run). Drives the LLaVA-OneVision image path
// (tower + projector + packing), the shared decoder with inputs_embeds, and optionally a SigLIP baseline tower.

import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { LlavaOnevision } from '../models/llava_onevision/model.js';
import { DecoderLM } from '../models/lm/decoder.js';
import { SiglipVisionModel } from '../models/siglip/model.js';
import { LlavaOnevisionProcessor } from '../preprocess/processor.js';
import { resizeRgb } from '../preprocess/pil-resize.js';
import { parseSiglipImageConfig, processSiglipImages, type SquashImageConfig } from '../preprocess/siglip-image.js';
import type { RgbImage } from '../preprocess/image.js';
import { renderPrompt } from '../tokenizer/prompt.js';
import { SIGLIP_VIEW, type ImageRecord, type TapTensor, type ViewTokens } from '../store/gather.js';
import { modelIdentity } from '../store/provenance.js';
import { expandHooks, parseHook, type HookDims } from '../taps/names.js';
import { f32, type Tensor } from '../tensor/tensor.js';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { tapPatterns, type ExtractConfig } from './config.js';

/** One decoded, preprocessed image, ready for the model (the only per-image state held between prepare and run). */
export interface PreparedImage {
  readonly ids: number[];
  /** [1, tiles, 3, S, S] */
  readonly pixelValues: Tensor<'float32'>;
  /** the size the processor saw (after --resolution) */
  readonly size: { readonly height: number; readonly width: number };
  /** the decoded file's size */
  readonly originalSize: { readonly width: number; readonly height: number };
  readonly tiles: number;
  /** first image-token position */
  readonly imageStart: number;
  readonly views: Record<string, ViewTokens>;
  /** kept only when the SigLIP baseline is asked for */
  readonly rgb?: RgbImage;
}

export interface TapPlan {
  readonly all: string[];
  readonly lm: string[];
  readonly vision: string[];
  readonly packed: boolean;
  readonly siglip: string[];
}

export class LlavaExtractor {
  private constructor(
    private readonly cfg: ExtractConfig,
    private readonly model: LlavaOnevision,
    private readonly lm: DecoderLM,
    private readonly processor: LlavaOnevisionProcessor,
    private readonly siglip: { model: SiglipVisionModel; image: SquashImageConfig; identity: Record<string, unknown> } | undefined,
    readonly plan: TapPlan,
  ) {}

  static async open(cfg: ExtractConfig): Promise<LlavaExtractor> {
    const model = await LlavaOnevision.load(cfg.model, { device: cfg.device });
    const disposables: Array<{ dispose(): Promise<void> }> = [model];
    try {
      const processor = await LlavaOnevisionProcessor.fromPretrained(cfg.model);
      let siglip: LlavaExtractor['siglip'];
      if (cfg.siglip) {
        const pre = join(cfg.siglip, 'preprocessor_config.json');
        if (!existsSync(pre)) throw new KvlensInputError('the SigLIP baseline needs its preprocessor_config.json', cfg.siglip);
        const image = parseSiglipImageConfig(JSON.parse(readFileSync(pre, 'utf8')), pre);
        const sm = await SiglipVisionModel.load(cfg.siglip, { device: cfg.device });
        disposables.push(sm);
        siglip = { model: sm, image, identity: { ...modelIdentity(cfg.siglip, cfg.weightsHash), preprocessorSha256: sha256File(pre) } };
      }
      const dims: HookDims = { ...model.dims, ...(siglip ? { siglipLayers: siglip.model.dims.layers } : {}) };
      const plan = planTaps(tapPatterns(cfg), dims);
      if (plan.siglip.length && !siglip) throw new KvlensUsageError('siglip.* taps need --siglip <SigLIP vision model dir>');
      // The model's own language model: building a second one would hold the LM weights twice.
      return new LlavaExtractor(cfg, model, model.lm, processor, siglip, plan);
    } catch (e) {
      for (const d of disposables) await d.dispose();
      throw e;
    }
  }

  /** The store views: the chosen LLaVA views, plus "siglip" when baseline taps are stored. */
  get views(): string[] {
    return [...this.cfg.views, ...(this.plan.siglip.length ? [SIGLIP_VIEW] : [])];
  }

  /** The prompt exactly as tokenised, with one image placeholder (recorded in the store's identity). */
  promptTemplate(): string {
    const p = this.processor;
    return renderPrompt(this.promptInput(), 1, p.template, p.tokenizer);
  }

  /** Everything besides model and prompt that changes the stored numbers (the store refuses a run that differs). */
  processorIdentity(): Record<string, unknown> {
    return {
      imageProcessorSha256: sha256File(this.processor.sources.imageProcessorFile ?? join(this.cfg.model, 'preprocessor_config.json')),
      chatTemplateSource: this.processor.template.source.startsWith('builtin:') ? this.processor.template.source : 'checkpoint',
      resolution: this.cfg.resolution ?? null,
      batchSize: this.cfg.batchSize,
      siglip: this.siglip?.identity ?? null,
    };
  }

  /** `prefix`: this image's own prefix (per-image prefixes), replacing the config's. */
  async prepare(rgb: RgbImage, prefix?: string): Promise<PreparedImage> {
    const img = this.cfg.resolution ? resizeRgb(rgb, this.cfg.resolution, this.cfg.resolution, 'bicubic') : rgb;
    const out = await this.processor.prepare({ images: [img], ...this.promptInput(prefix) });
    const run = out.tokenMap.runs[0];
    const views = viewTokens(out.tokenMap.entries, this.cfg.views);
    if (this.plan.siglip.length) {
      const side = this.siglip!.model.dims.patchesPerSide;
      views[SIGLIP_VIEW] = { rows: side, cols: side, positions: Array.from({ length: side * side }, (_, k) => k) };
    }
    const pv = out.pixelValues!; // [1, tiles, 3, S, S]
    return {
      ids: Array.from(out.inputIds.data, Number),
      pixelValues: pv,
      size: { height: img.height, width: img.width },
      originalSize: { width: rgb.width, height: rgb.height },
      tiles: out.tilesPerImage[0],
      imageStart: run.start,
      views,
      ...(this.plan.siglip.length ? { rgb: img } : {}),
    };
  }

  /** Run a batch; returns, per image, the store record views and every tap in the store's layouts. */
  async run(batch: readonly PreparedImage[]): Promise<Array<Map<string, TapTensor>>> {
    const results = batch.map(() => new Map<string, TapTensor>());
    // Vision tower + projector over the real tiles of every image: [sum(tiles), C, S, S].
    const [, , C, S] = batch[0].pixelValues.shape;
    const per = C * S * S;
    const total = batch.reduce((a, b) => a + b.tiles, 0);
    const pixel = new Float32Array(total * per);
    let o = 0;
    for (const b of batch) { pixel.set(b.pixelValues.data.subarray(0, b.tiles * per), o); o += b.tiles * per; }
    const sizes = batch.flatMap((b) => [b.size.height, b.size.width]);
    const feats = await this.model.imageFeatures(f32([total, C, S, S], pixel), sizes, this.plan.vision);
    const D = this.model.text.hiddenSize;
    let row = 0;
    let tile = 0;
    const embeds = batch.map((b, i) => {
      const n = feats.lengths[i];
      const packed = f32([n, D], (feats.packed.data as Float32Array).subarray(row * D, (row + n) * D)); // [imageToken, dModel]
      row += n;
      if (this.plan.packed) results[i].set('image.packed', { shape: packed.shape, data: packed.data, origin: b.imageStart });
      for (const name of this.plan.vision) {
        const t = feats.taps.get(name)!; // [tile, token, d] over all images' real tiles
        const [, tok, d] = t.shape;
        results[i].set(name, { shape: [b.tiles, tok, d], data: (t.data as Float32Array).subarray(tile * tok * d, (tile + b.tiles) * tok * d) });
      }
      tile += b.tiles;
      return this.model.embedWithImages([b.ids], packed); // [1, pos, dModel]
    });
    if (this.plan.lm.length) await this.runLm(embeds, results);
    if (this.plan.siglip.length) await this.runSiglip(batch, results);
    return results;
  }

  async dispose(): Promise<void> {
    await this.model.dispose(); // owns this.lm
    await this.siglip?.model.dispose();
  }

  private promptInput(prefix: string = this.cfg.prefix) {
    return { question: this.cfg.question, prefix, ...(this.cfg.systemPrompt !== undefined ? { systemPrompt: this.cfg.systemPrompt } : {}) };
  }

  /** Equal-length prompts run as one batch; otherwise image by image (no padding, so no padding effects on the numbers). */
  private async runLm(embeds: Tensor<'float32'>[], results: Array<Map<string, TapTensor>>): Promise<void> {
    const S = embeds[0].shape[1];
    const groups = embeds.every((e) => e.shape[1] === S) ? [embeds.map((_, i) => i)] : embeds.map((_, i) => [i]);
    for (const g of groups) {
      const D = embeds[0].shape[2];
      const input = g.length === 1 ? embeds[g[0]] : f32([g.length, S, D], concat(g.map((i) => embeds[i].data)));
      const out = await this.lm.forward({ inputsEmbeds: input, taps: this.plan.lm, logitsAt: 'none', returnCache: false });
      for (const [name, t] of out.taps) {
        g.forEach((img, b) => results[img].set(name, withHeads(name, batchRow(t, b), this.model.text)));
      }
    }
  }

  private async runSiglip(batch: readonly PreparedImage[], results: Array<Map<string, TapTensor>>): Promise<void> {
    const pixel = processSiglipImages(batch.map((b) => b.rgb!), this.siglip!.image); // [n, 3, H, W]
    const out = await this.siglip!.model.forward(pixel, { taps: this.plan.siglip });
    for (const [name, t] of out.taps) batch.forEach((_, i) => results[i].set(name, batchRow(t as Tensor<'float32'>, i)));
  }
}

/** Split requested hooks by the part of the model that produces them; refuse what the store cannot hold. */
export function planTaps(patterns: readonly string[], dims: HookDims): TapPlan {
  const all = expandHooks(patterns, dims);
  const plan: TapPlan = { all, lm: [], vision: [], packed: false, siglip: [] };
  let packed = false;
  for (const n of all) {
    const kind = parseHook(n).kind;
    if (kind.endsWith('attn.probs') || kind === 'logits') throw new KvlensUsageError(`tap "${n}" is not a per-token grid and cannot be extracted into a feature store`);
    if (kind.startsWith('lm.')) plan.lm.push(n);
    else if (kind.startsWith('vision.') || kind === 'projector.out') plan.vision.push(n);
    else if (kind.startsWith('siglip.')) plan.siglip.push(n);
    else if (kind === 'image.packed') packed = true;
  }
  return { ...plan, packed };
}

/** Base and high-res grids of the (single) image from the token map: positions in raster order. */
export function viewTokens(entries: readonly ({ view: string; row: number; col: number } | null)[], wanted: readonly string[]): Record<string, ViewTokens> {
  const cells = new Map<string, { row: number; col: number; pos: number }[]>();
  entries.forEach((e, pos) => {
    if (!e || e.view === 'newline') return;
    (cells.get(e.view) ?? cells.set(e.view, []).get(e.view)!).push({ row: e.row, col: e.col, pos });
  });
  const out: Record<string, ViewTokens> = {};
  for (const v of wanted) {
    const list = cells.get(v);
    if (!list?.length) continue;
    const rows = Math.max(...list.map((c) => c.row)) + 1;
    const cols = Math.max(...list.map((c) => c.col)) + 1;
    if (list.length !== rows * cols) throw new Error(`token map: view ${v} has ${list.length} tokens for a ${rows} x ${cols} grid`);
    const positions = new Array<number>(rows * cols);
    for (const c of list) positions[c.row * cols + c.col] = c.pos;
    out[v] = { rows, cols, positions };
  }
  return out;
}

/** Row b of a [batch, ...] tensor as [1, ...] (a view, no copy). */
function batchRow(t: Tensor<'float32'> | Tensor, b: number): { shape: number[]; data: Float32Array } {
  const per = t.data.length / t.shape[0];
  return { shape: [1, ...t.shape.slice(1)], data: (t.data as Float32Array).subarray(b * per, (b + 1) * per) };
}

/** Projections [1, pos, heads*dHead] carry their head count so the store can slice heads. */
export function withHeads(name: string, t: { shape: number[]; data: Float32Array }, c: { numHeads: number; numKvHeads: number }): TapTensor {
  if (name.endsWith('.attn.q_proj')) return { ...t, heads: c.numHeads };
  if (name.endsWith('.attn.k_proj') || name.endsWith('.attn.v_proj')) return { ...t, heads: c.numKvHeads };
  return t;
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export type { ImageRecord };
