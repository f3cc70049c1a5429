// The VisionLanguageModelApi plumbing every vision-language family shares: the family's processor behind prepare(),
// tap names resolved against the tap table (src/taps/table.ts) and split between the image path and the decoder
// before anything runs, batched image encoding split back per prompt, image features scattered at the image tokens
// (HF masked_scatter), one decoder call with the request's interventions, every tap back in one map in the
// requested order, text continuation on a cache, greedy generation, and releasing both sessions. A family supplies
// its differences: its spec (data), how it runs its image path on a batch of pixels (and which request field
// carries their geometry), its image token, and (Qwen2-VL) extra decoder inputs such as M-RoPE ids.

import type { Tensor } from '../tensor/tensor.js';
import type { WeightSet } from '../tensor/safetensors.js';
import type { Device } from '../runtime/index.js';
import { expandHooks } from '../taps/names.js';
import { resolveTap, tapProducer, type ResolvedTap } from '../taps/table.js';
import { loadProcessor, type KvlensProcessor, type PreparedInputs } from '../preprocess/load.js';
import { imageViewGrids, type ViewTokens } from '../preprocess/token-map.js';
import { imageProcessorFileOf, type PrepareInput } from '../preprocess/processor.js';
import { renderPrompt, type PromptInput } from '../tokenizer/prompt.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { f32 } from '../tensor/tensor.js';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { DecoderLM, type ForwardRequest, type Rows } from './lm/decoder.js';
import type { DecoderConfig } from './lm/config.js';
import type { KvCache } from './lm/cache.js';
import { greedyGenerate } from './generate.js';
import type {
  EncodedImages, FamilySpec, GenerateOptions, GenerateResult, ModelDims, ModelForwardRequest, ModelForwardResult, StepOptions, VisionLanguageModelApi,
} from './types.js';

export const IMAGE_PACKED_TAP = 'image.packed';
export const PROJECTOR_TAP = 'projector.out';

/** Taps produced by the image path rather than the decoder (the tap table's producer). */
export function isImageTap(name: string): boolean {
  return tapProducer(name) === 'image-path';
}

/** Hook-validation dims of a decoder (plus a vision tower of `visionLayers` layers; 0 for text-only). */
export function modelDims(text: DecoderConfig, visionLayers: number): ModelDims {
  return { lmLayers: text.numLayers, visionLayers, kvHeads: text.numKvHeads, headDim: text.headDim, dModel: text.hiddenSize };
}

/** The request fields a model passes straight to the decoder (interventions, masks, positions, logits). */
export function decoderStep(req: ModelForwardRequest, lmTaps: readonly string[]): ForwardRequest {
  return {
    past: req.past, taps: lmTaps, block: req.block, denseMask: req.denseMask, layerMasks: req.layerMasks,
    attentionMask2d: req.attentionMask2d, positionIds: req.positionIds, logitsAt: req.logitsAt, returnCache: true,
  };
}

/** Token ids as rows: [batch][pos] arrays or an integer tensor [batch, pos]. */
export function idRows(x: Rows | Tensor): number[][] {
  if (!('shape' in x)) return x.map((r) => [...r]);
  if (x.shape.length !== 2) throw new KvlensUsageError(`inputIds must be 2-D [batch, pos], got [${x.shape.join(', ')}]`);
  const [B, S] = x.shape;
  const d = x.data as ArrayLike<number | bigint>;
  return Array.from({ length: B }, (_, b) => Array.from({ length: S }, (_, s) => Number(d[b * S + s])));
}

/** HF masked_scatter: emb [batch, pos, dModel] gets packed [imageToken, dModel] in order at every image-token position. */
export function scatterImageFeatures(emb: Tensor<'float32'>, inputIds: Rows, imageId: number, packed?: Tensor<'float32'>): Tensor<'float32'> {
  return scatterRows(emb, inputIds, imageId, [packed]);
}

/**
 * masked_scatter with the features given per batch row (`perRow[b]` fills row b's image tokens in order; a single
 * entry fills every row's tokens in row-major order), written straight into emb: no concatenated copy.
 */
export function scatterRows(emb: Tensor<'float32'>, inputIds: Rows, imageId: number, perRow: readonly (Tensor<'float32'> | undefined)[]): Tensor<'float32'> {
  const d = emb.shape[2];
  const S = emb.shape[1];
  const rowsOf = perRow.length === 1 ? [inputIds.map((_, b) => b)] : inputIds.map((_, b) => [b]);
  if (perRow.length !== 1 && perRow.length !== inputIds.length) throw new KvlensUsageError(`images: ${perRow.length} entries for ${inputIds.length} batch rows`);
  perRow.forEach((packed, k) => {
    const positions: number[] = [];
    for (const b of rowsOf[k]) inputIds[b].forEach((id, s) => { if (id === imageId) positions.push(b * S + s); });
    const n = packed ? packed.shape[0] : 0;
    if (positions.length !== n) {
      throw new KvlensInputError(`the prompt${perRow.length === 1 ? '' : ` (row ${k})`} has ${positions.length} image tokens (id ${imageId}) but the images give ${n} image features; ` +
        'the prompt must hold exactly one image token per feature (expand <image> with the processor)', 'input_ids');
    }
    const src = packed?.data as Float32Array | undefined;
    positions.forEach((p, i) => emb.data.set(src!.subarray(i * d, (i + 1) * d), p * d));
  });
  return emb;
}

/** What a family's image path gives for a batch of images (all prompts' images, in order). */
export interface ImagePathOutput {
  /** image.packed [imageToken, dModel], images in prompt order */
  readonly packed: Tensor<'float32'>;
  /** image tokens per image */
  readonly lengths: number[];
  /** the vision hooks asked for, over every image (tile taps: tiles of all images; row taps: patches / tokens) */
  readonly taps: Map<string, Tensor>;
  /** tower units per image: real tiles (LLaVA) or patches (Qwen) — the rows of the per-tile / per-patch taps */
  readonly units: number[];
}

/** Row `start`..`start+n` of a tensor along axis 0, as a view (no copy). */
export function rowsView(t: Tensor, start: number, n: number): Tensor {
  const per = t.shape[0] ? t.data.length / t.shape[0] : 0;
  return { ...t, shape: [n, ...t.shape.slice(1)], data: (t.data as Float32Array).subarray(start * per, (start + n) * per) } as Tensor;
}

/** Something holding native resources (an ORT session). */
export interface Releasable {
  dispose(): Promise<void>;
}

/** The decoder of a checkpoint whose vision session is already open; if it fails to load, the vision session is released. */
export async function loadDecoderBeside(vision: Releasable, ws: WeightSet, config: DecoderConfig, opts: { device?: Device; threads?: number }): Promise<DecoderLM> {
  try {
    return await DecoderLM.fromWeights(ws, { config, device: opts.device, threads: opts.threads });
  } catch (e) {
    await vision.dispose();
    throw e;
  }
}

export abstract class VisionLanguageModel implements VisionLanguageModelApi {
  abstract readonly family: string;
  abstract readonly spec: FamilySpec;
  /** The checkpoint directory (its processor files are read from here). */
  abstract readonly dir: string;
  abstract readonly text: DecoderConfig;
  abstract readonly lm: DecoderLM;
  protected abstract readonly vision: Releasable;
  /** Vision-side hooks this model produces (vision.*, projector.out). */
  abstract readonly visionHooks: readonly string[];
  protected abstract readonly visionLayers: number;
  abstract readonly imageTokenId: number;
  /** The request field carrying image geometry next to pixelValues. */
  protected abstract readonly geometryField: 'imageSizes' | 'imageGridThw';
  private proc?: KvlensProcessor;

  /** Run the image path on pixelValues with the geometry from `geometryField`; `hooks` are vision hooks to return. */
  protected abstract runImagePath(pixelValues: Tensor, geometry: Tensor | readonly number[], hooks: readonly string[]): Promise<ImagePathOutput>;

  /** Every image of `prompts` as ONE image-path input: pixels (real tiles / patches only) and flat geometry. */
  protected abstract batchPixels(prompts: readonly PreparedInputs[]): { pixelValues: Tensor; geometry: number[] };

  /** Flat geometry of one prompt's images (LLaVA: height, width; Qwen: t, h, w). */
  protected abstract geometryOf(p: PreparedInputs): number[];

  /** The tower view's grid of image `image` when it is not a token-map view (Qwen's patch grid). */
  protected towerGrid(_p: PreparedInputs, _image: number): ViewTokens | undefined {
    return undefined;
  }

  /** Decoder inputs beyond the shared ones (Qwen2-VL: M-RoPE ids), decided once the images are encoded. */
  protected decoderExtras(_req: ModelForwardRequest, _ids: Rows): Partial<ForwardRequest> {
    return {};
  }

  get dims(): ModelDims {
    return modelDims(this.text, this.visionLayers);
  }

  get eosTokenIds(): readonly number[] {
    return this.text.eosTokenIds;
  }

  /** Load the family's processor (tokenizer, chat template, image processor) from the checkpoint; loadVisionModel does this. */
  async loadProcessor(): Promise<this> {
    this.proc ??= await loadProcessor(this.dir);
    return this;
  }

  protected get processor(): KvlensProcessor {
    if (!this.proc) throw new KvlensUsageError(`the ${this.family} model in ${this.dir} was opened without its processor; open it with loadVisionModel (it needs the tokenizer and preprocessor files)`);
    return this.proc;
  }

  get tokenizer(): TextTokenizer {
    return this.processor.tokenizer;
  }

  get imageProcessorFile(): string {
    return imageProcessorFileOf(this.processor.sources, this.dir);
  }

  get chatTemplateSource(): string {
    return this.processor.template.source;
  }

  renderPrompt(input: PromptInput, nImages: number): string {
    return renderPrompt(input, nImages, this.processor.template, this.processor.tokenizer);
  }

  encodeText(text: string): number[] {
    return this.processor.tokenizer.encode(text);
  }

  prepare(input: PrepareInput): Promise<PreparedInputs> {
    return this.processor.prepare(input);
  }

  imageRequest(p: PreparedInputs): Pick<ModelForwardRequest, 'inputIds' | 'pixelValues' | 'imageSizes' | 'imageGridThw'> {
    return { inputIds: p.inputIds, ...(p.pixelValues ? { pixelValues: p.pixelValues } : {}), ...(p.imageSizes ? { imageSizes: p.imageSizes } : {}), ...(p.imageGridThw ? { imageGridThw: p.imageGridThw } : {}) };
  }

  imageViews(p: PreparedInputs, image = 0): Record<string, ViewTokens> {
    const seq = this.spec.views.filter((v) => v.positions === 'sequence').map((v) => v.name);
    const out = imageViewGrids(p.tokenMap, seq, image);
    for (const v of this.spec.views) {
      if (v.positions !== 'tower') continue;
      const g = this.towerGrid(p, image);
      if (g) out[v.name] = g;
    }
    return out;
  }

  tapInfo(name: string): ResolvedTap {
    return resolveTap(name, {
      dims: this.dims, qHeads: this.text.numHeads, imageHooks: this.visionHooks,
      image: { visionTapLayout: this.spec.visionTapLayout, projectorLayout: this.spec.projectorLayout, towerView: this.spec.towerView, projectorView: this.spec.projectorView },
    });
  }

  /**
   * One image-path run over every image of `prompts` (one tower batch), split back per prompt as views (no copies).
   * `taps`: image-path hooks (vision.*, projector.out); image.packed is always there as `packed`.
   */
  async encodeImages(prompts: readonly PreparedInputs[], taps: readonly string[] = []): Promise<EncodedImages[]> {
    const hooks = expandHooks(taps, this.dims).filter((n) => n !== IMAGE_PACKED_TAP);
    const infos = hooks.map((n) => this.tapInfo(n));
    const bad = infos.find((i) => i.info.producer !== 'image-path');
    if (bad) throw new KvlensUsageError(`encodeImages: tap "${bad.name}" is produced by the ${bad.info.producer}, not the image path`);
    if (prompts.some((p) => !p.pixelValues)) throw new KvlensUsageError('encodeImages: every prompt needs images (pixelValues)');
    const whole = infos.filter((i) => i.layout === 'towerProbs' && this.spec.visionTapLayout.kind === 'rows');
    if (whole.length && prompts.length > 1) {
      // [1, head, patch, patch] over every patch of the batch: no per-prompt rows to split along
      throw new KvlensUsageError(`taps ${whole.map((i) => i.name).join(', ')}: ${this.family} attention maps span the whole image batch; encode one prompt at a time`);
    }
    const { pixelValues, geometry } = this.batchPixels(prompts);
    const out = await this.runImagePath(pixelValues, geometry, hooks);
    const D = this.text.hiddenSize;
    const result: EncodedImages[] = [];
    let image = 0;
    let token = 0;
    const cursor = new Map(hooks.map((h) => [h, 0]));
    for (const p of prompts) {
      const n = p.tokenMap.runs.length;
      const lengths = out.lengths.slice(image, image + n);
      const units = out.units.slice(image, image + n);
      const total = lengths.reduce((a, b) => a + b, 0);
      const packed = f32([total, D], (out.packed.data as Float32Array).subarray(token * D, (token + total) * D)); // [imageToken, dModel]
      const tapsOut = new Map<string, Tensor>();
      const rows = new Map<string, number[]>();
      infos.forEach((info) => {
        // per-image rows: tiles / patches of the tower, or image tokens for a merged (rows) projector
        const perImage = info.info.component === 'projector' && info.layout === 'rows' ? lengths : units;
        const count = perImage.reduce((a, b) => a + b, 0);
        const at = cursor.get(info.name)!;
        const t = out.taps.get(info.name)!;
        tapsOut.set(info.name, whole.includes(info) ? t : rowsView(t, at, count));
        rows.set(info.name, perImage);
        cursor.set(info.name, at + count);
      });
      result.push({ packed, lengths, geometry: this.geometryOf(p), taps: tapsOut, rows });
      image += n;
      token += total;
    }
    return result;
  }

  /** Token embeddings [batch, pos, dModel] with the packed image features written at the image-token positions. */
  embedWithImages(inputIds: Rows, packed?: Tensor<'float32'>): Tensor<'float32'> {
    return scatterImageFeatures(this.lm.embed(inputIds), inputIds, this.imageTokenId, packed);
  }

  /**
   * Image path (when pixelValues are given), scatter, decoder. Taps may name vision.*, projector.out, image.packed
   * and every lm.* hook, all validated before anything runs; they come back in one map, in the requested order.
   * With `images` (from encodeImages, one per batch row) the image path is not run again. With `past`, continues a cache.
   */
  async forward(req: ModelForwardRequest): Promise<ModelForwardResult> {
    const r = await this.step(req, true);
    return { ...r, cache: r.cache! };
  }

  /**
   * A forward for its taps only (extraction): no cache is kept and no logits are computed, so the decoder stops
   * after the last layer a tap needs.
   */
  async captureTaps(req: Omit<ModelForwardRequest, 'logitsAt' | 'past'>): Promise<Map<string, Tensor>> {
    return (await this.step({ ...req, logitsAt: 'none' }, false)).taps;
  }

  private async step(req: ModelForwardRequest, returnCache: boolean): Promise<Omit<ModelForwardResult, 'cache'> & { cache?: KvCache }> {
    const names = expandHooks(req.taps ?? [], this.dims);
    const imageTaps = names.filter(isImageTap);
    const lmTaps = names.filter((n) => !isImageTap(n));
    for (const n of imageTaps) this.tapInfo(n); // a hook this model does not build fails here
    if (req.images) {
      if (req.pixelValues || req[this.geometryField]) throw new KvlensUsageError(`give either images (encoded) or pixelValues + ${this.geometryField}, not both`);
      if (imageTaps.length) throw new KvlensUsageError(`taps ${imageTaps.join(', ')}: with pre-encoded images, read them from encodeImages' result`);
    }
    const geometry = req.images ? req.images.flatMap((e) => e.geometry) : req[this.geometryField];
    if (!req.images && (req.pixelValues === undefined) !== (geometry === undefined)) throw new KvlensUsageError(`give pixelValues and ${this.geometryField} together`);
    if (imageTaps.length && !req.pixelValues) throw new KvlensUsageError(`taps ${imageTaps.join(', ')} need pixelValues (this call has no image)`);
    const ids = idRows(req.inputIds);
    const taps = new Map<string, Tensor>();
    let perRow: (Tensor<'float32'> | undefined)[] = [undefined];
    let imageTokens: number[] | undefined;
    if (req.images) {
      perRow = req.images.map((e) => e.packed);
      imageTokens = req.images.flatMap((e) => [...e.lengths]);
    } else if (req.pixelValues) {
      const feats = await this.runImagePath(req.pixelValues, geometry!, imageTaps.filter((n) => n !== IMAGE_PACKED_TAP));
      perRow = [feats.packed];
      imageTokens = feats.lengths;
      for (const [k, v] of feats.taps) taps.set(k, v);
      taps.set(IMAGE_PACKED_TAP, feats.packed);
    }
    const extras = this.decoderExtras(req.images ? { ...req, [this.geometryField]: geometry } : req, ids);
    const inputsEmbeds = scatterRows(this.lm.embed(ids), ids, this.imageTokenId, perRow); // [batch, pos, dModel]
    const out = await this.lm.forward({ ...decoderStep(req, lmTaps), ...extras, inputsEmbeds, returnCache });
    for (const [k, v] of out.taps) taps.set(k, v);
    return { taps: new Map(names.map((n) => [n, taps.get(n)!])), logits: out.logits, logitsAt: out.logitsAt, cache: out.cache, ...(imageTokens ? { imageTokens } : {}) };
  }

  /** Text continuation on a cached prefix: the image (already in the cache) is not recomputed. */
  continue(cache: KvCache, inputIds: Rows | Tensor, opts: StepOptions = {}): Promise<ModelForwardResult> {
    return this.forward({ ...opts, inputIds, past: cache });
  }

  generate(req: ModelForwardRequest, opts: GenerateOptions): Promise<GenerateResult> {
    return greedyGenerate(this, req, opts);
  }

  async dispose(): Promise<void> {
    await this.vision.dispose();
    await this.lm.dispose();
  }
}
