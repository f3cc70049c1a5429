// The KvlensModel plumbing every vision-language family shares: tap names validated and split between the image
// path and the decoder before anything runs, image features scattered at the image tokens (HF masked_scatter),
// one decoder call with the request's interventions, every tap back in one map in the requested order, text
// continuation on a cache, greedy generation, and releasing both sessions. A family supplies its differences:
// how it encodes images (and which request field carries their geometry), its image token, and (Qwen2-VL) extra
// decoder inputs such as M-RoPE ids.

import type { Tensor } from '../tensor/tensor.js';
import type { WeightSet } from '../tensor/safetensors.js';
import type { Device } from '../runtime/index.js';
import { expandHooks } from '../taps/names.js';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { DecoderLM, type ForwardRequest, type Rows } from './lm/decoder.js';
import type { DecoderConfig } from './lm/config.js';
import type { KvCache } from './lm/cache.js';
import { greedyGenerate } from './generate.js';
import type { GenerateOptions, GenerateResult, KvlensModel, ModelDims, ModelForwardRequest, ModelForwardResult, StepOptions } from './types.js';

export const IMAGE_PACKED_TAP = 'image.packed';
export const PROJECTOR_TAP = 'projector.out';

/** Taps produced by the image path rather than the decoder. */
export function isImageTap(name: string): boolean {
  return name.startsWith('vision.') || name === PROJECTOR_TAP || name === IMAGE_PACKED_TAP;
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
  const d = emb.shape[2];
  const positions: number[] = [];
  inputIds.forEach((row, b) => row.forEach((id, s) => { if (id === imageId) positions.push(b * row.length + s); }));
  const n = packed ? packed.shape[0] : 0;
  if (positions.length !== n) {
    throw new KvlensInputError(`the prompt has ${positions.length} image tokens (id ${imageId}) but the images give ${n} image features; ` +
      'the prompt must hold exactly one image token per feature (expand <image> with the processor)', 'input_ids');
  }
  const src = packed?.data as Float32Array | undefined;
  positions.forEach((p, i) => emb.data.set(src!.subarray(i * d, (i + 1) * d), p * d));
  return emb;
}

/** What a family's image path gives the shared forward. */
export interface EncodedImages {
  /** image.packed [imageToken, dModel], images in prompt order */
  readonly packed: Tensor<'float32'>;
  /** image tokens per image */
  readonly lengths: number[];
  /** the vision hooks asked for */
  readonly taps: Map<string, Tensor>;
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

export abstract class VisionLanguageModel implements KvlensModel {
  abstract readonly family: string;
  abstract readonly text: DecoderConfig;
  abstract readonly lm: DecoderLM;
  protected abstract readonly vision: Releasable;
  /** Vision-side hooks this model produces (vision.*, projector.out). */
  abstract readonly visionHooks: readonly string[];
  protected abstract readonly visionLayers: number;
  protected abstract readonly imageTokenId: number;
  /** The request field carrying image geometry next to pixelValues. */
  protected abstract readonly geometryField: 'imageSizes' | 'imageGridThw';

  /** Run the image path on pixelValues with the geometry from `geometryField`; `hooks` are vision hooks to return. */
  protected abstract encodeImages(pixelValues: Tensor, geometry: Tensor | readonly number[], hooks: readonly string[]): Promise<EncodedImages>;

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

  /** Token embeddings [batch, pos, dModel] with the packed image features written at the image-token positions. */
  embedWithImages(inputIds: Rows, packed?: Tensor<'float32'>): Tensor<'float32'> {
    return scatterImageFeatures(this.lm.embed(inputIds), inputIds, this.imageTokenId, packed);
  }

  /**
   * Image path (when pixelValues are given), scatter, decoder. Taps may name vision.*, projector.out, image.packed
   * and every lm.* hook, all validated before anything runs; they come back in one map, in the requested order.
   * With `past`, continues a cache.
   */
  async forward(req: ModelForwardRequest): Promise<ModelForwardResult> {
    const names = expandHooks(req.taps ?? [], this.dims);
    const imageTaps = names.filter(isImageTap);
    const lmTaps = names.filter((n) => !isImageTap(n));
    for (const n of imageTaps) {
      if (n !== IMAGE_PACKED_TAP && !this.visionHooks.includes(n)) {
        throw new KvlensUsageError(`tap "${n}" is not produced by the ${this.family} image path (available: ${[...this.visionHooks, IMAGE_PACKED_TAP].join(', ')})`);
      }
    }
    const geometry = req[this.geometryField];
    if ((req.pixelValues === undefined) !== (geometry === undefined)) throw new KvlensUsageError(`give pixelValues and ${this.geometryField} together`);
    if (imageTaps.length && !req.pixelValues) throw new KvlensUsageError(`taps ${imageTaps.join(', ')} need pixelValues (this call has no image)`);
    const ids = idRows(req.inputIds);
    const taps = new Map<string, Tensor>();
    let packed: Tensor<'float32'> | undefined;
    let imageTokens: number[] | undefined;
    if (req.pixelValues) {
      const feats = await this.encodeImages(req.pixelValues, geometry!, imageTaps.filter((n) => n !== IMAGE_PACKED_TAP));
      packed = feats.packed;
      imageTokens = feats.lengths;
      for (const [k, v] of feats.taps) taps.set(k, v);
      taps.set(IMAGE_PACKED_TAP, packed);
    }
    const extras = this.decoderExtras(req, ids);
    const inputsEmbeds = this.embedWithImages(ids, packed); // [batch, pos, dModel]
    const out = await this.lm.forward({ ...decoderStep(req, lmTaps), ...extras, inputsEmbeds });
    for (const [k, v] of out.taps) taps.set(k, v);
    return { taps: new Map(names.map((n) => [n, taps.get(n)!])), logits: out.logits, logitsAt: out.logitsAt, cache: out.cache!, ...(imageTokens ? { imageTokens } : {}) };
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
