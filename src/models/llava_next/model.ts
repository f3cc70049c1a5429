// LLaVA-NeXT (e.g. llama3-llava-next-8b): CLIP tower + projector (one ORT session over tiles), anyres packing
// without anyres_max downsampling, image features scattered at the <image> tokens, then the shared decoder with
// the Llama adapter driven by inputs_embeds. Implements the shared KvlensModel (src/models/types.ts) like
// LlavaOnevision: forward with vision + LM taps in one map, continue on a cache, generate, dispose.
//
//   const m = await LlavaNext.load(dir);
//   const out = await m.forward({ inputIds, pixelValues, imageSizes, taps: ['lm.*.attn.k'], logitsAt: 'last' });
//   const next = await m.continue(out.cache, [[tok]]);
//   await m.dispose();

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../../runtime/index.js';
import { WeightSet } from '../../tensor/safetensors.js';
import { f32, toF32, type Tensor } from '../../tensor/tensor.js';
import { expandHooks } from '../../taps/names.js';
import { KvlensInputError, KvlensUsageError } from '../../util/errors.js';
import { DecoderLM, type Rows } from '../lm/decoder.js';
import type { KvCache } from '../lm/cache.js';
import { greedyGenerate } from '../generate.js';
import type { GenerateOptions, GenerateResult, KvlensModel, ModelDims, ModelForwardRequest, ModelForwardResult, StepOptions } from '../types.js';
import { weightNamesUnder, type DecoderConfig } from '../lm/config.js';
import { parseLlamaConfig } from '../llama/config.js';
import { parseQwen2Config } from '../qwen2/config.js';
import { imageSizesFrom } from '../llava_onevision/features.js';
import { realTiles } from '../llava_onevision/model.js';
import { parseLlavaNextConfig, type LlavaNextConfig } from './config.js';
import { llavaNextTilesForImage, packLlavaNext } from './pack.js';
import { LlavaNextVision } from './vision.js';

export interface LlavaNextLoadOptions {
  readonly device?: Device;
  readonly threads?: number;
  readonly tileBatch?: number;
  /** Build the vision tower's attention-probability outputs too. */
  readonly visionAttentionProbs?: boolean;
}

export interface LlavaNextImageFeatures {
  /** image.packed [imageToken, dModel] for all images in order */
  readonly packed: Tensor<'float32'>;
  readonly lengths: number[];
  readonly tilesPerImage: number[];
  /** requested vision hooks ([tile, token, d] over the real tiles) */
  readonly taps: Map<string, Tensor>;
}

/** The text model of a LLaVA-NeXT checkpoint by its model_type (Llama for the paper's model; Mistral/Vicuna are Llama-shaped). */
function parseTextConfig(raw: Record<string, unknown>, where: string): DecoderConfig {
  const weights = weightNamesUnder('language_model.');
  switch (raw.model_type) {
    case 'llama': return parseLlamaConfig(raw, { where, weights });
    case 'qwen2': return parseQwen2Config(raw, { where, weights });
    default: throw new KvlensInputError(`field "text_config.model_type" is ${JSON.stringify(raw.model_type)}; supported: "llama", "qwen2"`, where);
  }
}

export class LlavaNext implements KvlensModel {
  readonly family = 'llava_next';

  private constructor(
    readonly dir: string,
    readonly config: LlavaNextConfig,
    readonly text: DecoderConfig,
    readonly lm: DecoderLM,
    private readonly vision: LlavaNextVision,
    private readonly newline: Float32Array,
  ) {}

  static async load(dir: string, opts: LlavaNextLoadOptions = {}): Promise<LlavaNext> {
    const cfgPath = join(dir, 'config.json');
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(cfgPath, 'utf8'));
    } catch (e) {
      throw new KvlensInputError(`cannot read (${(e as Error).message})`, cfgPath);
    }
    const config = parseLlavaNextConfig(raw, cfgPath);
    const text = parseTextConfig(config.textConfigRaw, `${cfgPath} (text_config)`);
    const ws = WeightSet.open(dir);
    const newline = toF32(ws.read('image_newline'));
    if (newline.length !== text.hiddenSize) throw new KvlensInputError(`"image_newline" has ${newline.length} values, text hidden_size is ${text.hiddenSize}`, dir);
    const vision = await LlavaNextVision.create(config, ws, text.hiddenSize, { device: opts.device, attentionProbs: opts.visionAttentionProbs, tileBatch: opts.tileBatch });
    try {
      const lm = await DecoderLM.fromWeights(ws, { config: text, device: opts.device, threads: opts.threads });
      return new LlavaNext(dir, config, text, lm, vision, Float32Array.from(newline));
    } catch (e) {
      await vision.dispose();
      throw e;
    }
  }

  get dims(): ModelDims {
    const t = this.text;
    return { lmLayers: t.numLayers, visionLayers: this.config.vision.num_hidden_layers, kvHeads: t.numKvHeads, headDim: t.headDim, dModel: t.hiddenSize };
  }

  get eosTokenIds(): readonly number[] {
    return this.text.eosTokenIds;
  }

  /** Vision-side hooks this model produces. */
  get visionHooks(): readonly string[] {
    return this.vision.outputNames;
  }

  async imageFeatures(pixelValues: Tensor, imageSizes: Tensor | readonly number[], hooks: readonly string[] = []): Promise<LlavaNextImageFeatures> {
    const sizes = imageSizesFrom(('data' in (imageSizes as Tensor) ? (imageSizes as Tensor).data : imageSizes) as BigInt64Array);
    const tilesPerImage = sizes.map((s) => llavaNextTilesForImage(s, this.config));
    const real = realTiles(pixelValues, tilesPerImage);
    const fetch = [...new Set([...hooks, 'projector.out'])];
    const out = await this.vision.run(real, fetch);
    const D = this.text.hiddenSize;
    const packed = packLlavaNext(toF32(out.get('projector.out')!), tilesPerImage, sizes, this.config, D, this.newline);
    const taps = new Map<string, Tensor>();
    for (const h of hooks) taps.set(h, out.get(h)!);
    const total = packed.lengths.reduce((a, b) => a + b, 0);
    return { packed: f32([total, D], packed.data), lengths: packed.lengths, tilesPerImage, taps };
  }

  /** Token embeddings with the packed features written at the image-token positions (counts must agree). */
  embedWithImages(inputIds: Rows, packed?: Tensor<'float32'>): Tensor<'float32'> {
    return scatterImageFeatures(this.lm.embed(inputIds), inputIds, this.config.imageTokenIndex, packed);
  }

  /**
   * The whole model on a prompt: vision (when pixelValues are given), scatter, decoder. Taps may name vision.*,
   * projector.out, image.packed and every lm.* hook; all come back in one map. With `past`, continues a cache.
   */
  async forward(req: ModelForwardRequest): Promise<ModelForwardResult> {
    const names = expandHooks(req.taps ?? [], this.dims);
    const visionTaps = names.filter(isImageTap);
    const lmTaps = names.filter((n) => !isImageTap(n));
    if ((req.pixelValues === undefined) !== (req.imageSizes === undefined)) throw new KvlensUsageError('give pixelValues and imageSizes together');
    if (visionTaps.length && !req.pixelValues) throw new KvlensUsageError(`taps ${visionTaps.join(', ')} need pixelValues (this call has no image)`);
    const taps = new Map<string, Tensor>();
    let packed: Tensor<'float32'> | undefined;
    let imageTokens: number[] | undefined;
    if (req.pixelValues) {
      const feats = await this.imageFeatures(req.pixelValues, req.imageSizes!, visionTaps.filter((t) => t !== 'image.packed'));
      packed = feats.packed;
      imageTokens = feats.lengths;
      for (const [k, v] of feats.taps) taps.set(k, v);
      taps.set('image.packed', packed);
    }
    const inputsEmbeds = this.embedWithImages(idRows(req.inputIds), packed);
    const out = await this.lm.forward({
      inputsEmbeds, past: req.past, taps: lmTaps, block: req.block, denseMask: req.denseMask, layerMasks: req.layerMasks,
      attentionMask2d: req.attentionMask2d, positionIds: req.positionIds, logitsAt: req.logitsAt, returnCache: true,
    });
    for (const [k, v] of out.taps) taps.set(k, v);
    return { taps: new Map(names.map((n) => [n, taps.get(n)!])), logits: out.logits, logitsAt: out.logitsAt, cache: out.cache!, ...(imageTokens ? { imageTokens } : {}) };
  }

  /** Text continuation on a cached prefix (the image is not recomputed). */
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

/** Taps produced by the image path rather than the decoder. */
export function isImageTap(name: string): boolean {
  return /^(vision\.|projector\.out$|image\.packed$)/.test(name);
}

/** Token ids as rows: [batch][pos] arrays or an integer tensor [batch, pos]. */
export function idRows(x: Rows | Tensor): number[][] {
  if (!('shape' in x)) return x.map((r) => [...r]);
  if (x.shape.length !== 2) throw new KvlensUsageError(`inputIds must be 2-D [batch, pos], got [${x.shape.join(', ')}]`);
  const [B, S] = x.shape;
  const d = x.data as ArrayLike<number | bigint>;
  return Array.from({ length: B }, (_, b) => Array.from({ length: S }, (_, s) => Number(d[b * S + s])));
}

/** HF masked_scatter: features in order at every position holding the image token. */
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
