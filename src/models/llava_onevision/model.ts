// LLaVA-OneVision: SigLIP tower + projector (one ORT session over tiles), anyres packing in JS, image features
// scattered into the token embeddings at the <image> positions (HF masked_scatter), then the Qwen2 decoder
// driven with inputs_embeds. Weight layouts of transformers <= 4.51 ("vision_tower.*", "language_model.model.*")
// and >= 4.52 ("model.vision_tower.*", "model.language_model.*", "lm_head.weight") are both recognised.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../../runtime/index.js';
import { WeightSet } from '../../tensor/safetensors.js';
import { f32, tensor, toF32, type Tensor } from '../../tensor/tensor.js';
import { KvlensInputError, KvlensUsageError } from '../../util/errors.js';
import { expandHooks } from '../../taps/names.js';
import { DecoderLM, type KvCache, type Rows } from '../lm/index.js';
import type { DecoderConfig, DecoderWeightNames } from '../lm/config.js';
import { greedyGenerate } from '../generate.js';
import type { GenerateOptions, GenerateResult, KvlensModel, ModelDims, ModelForwardRequest, ModelForwardResult, StepOptions } from '../types.js';
import { parseQwen2Config } from '../qwen2/config.js';
import { parseLlavaOnevisionConfig, type LlavaOnevisionConfig } from './config.js';
import { imageSizesFrom, packAllImages, tilesForImage } from './features.js';
import { LlavaVisionPath, PROJECTOR_TAP, type VisionPrefixes } from './vision.js';

interface Layout {
  readonly vision: VisionPrefixes;
  readonly newline: string;
  readonly lm: DecoderWeightNames;
}

/** Which of the two HF weight layouts a checkpoint uses. */
function detectLayout(ws: WeightSet): Layout {
  if (ws.has('vision_tower.vision_model.embeddings.patch_embedding.weight')) {
    return { vision: { tower: 'vision_tower.vision_model.', projector: 'multi_modal_projector.' }, newline: 'image_newline', lm: { model: 'language_model.model.', lmHead: 'language_model.lm_head.weight' } };
  }
  if (ws.has('model.vision_tower.vision_model.embeddings.patch_embedding.weight')) {
    return { vision: { tower: 'model.vision_tower.vision_model.', projector: 'model.multi_modal_projector.' }, newline: 'model.image_newline', lm: { model: 'model.language_model.', lmHead: 'lm_head.weight' } };
  }
  throw new KvlensInputError('no LLaVA-OneVision vision tower weights (looked for vision_tower.vision_model.* and model.vision_tower.vision_model.*)', ws.dir);
}

export interface ImageFeatures {
  /** image.packed: [imageToken, dModel] for all images in prompt order */
  readonly packed: Tensor<'float32'>;
  /** tokens per image */
  readonly lengths: number[];
  /** real (unpadded) tiles per image */
  readonly tilesPerImage: number[];
  /** requested vision hooks ([tile, token, d] over the real tiles of all images) and projector.out */
  readonly taps: Map<string, Tensor>;
}

/** Taps produced by the image path (everything else goes to the language model). */
const IMAGE_PACKED_TAP = 'image.packed';
function isImageTap(name: string): boolean {
  return name.startsWith('vision.') || name === PROJECTOR_TAP || name === IMAGE_PACKED_TAP;
}

export class LlavaOnevision implements KvlensModel {
  readonly family = 'llava_onevision';
  private visionCalls = 0;

  private constructor(
    readonly dir: string,
    readonly config: LlavaOnevisionConfig,
    readonly text: DecoderConfig,
    readonly weights: WeightSet,
    private readonly vision: LlavaVisionPath,
    readonly lm: DecoderLM,
    private readonly newline: Float32Array,
  ) {}

  static async load(dir: string, opts: { device?: Device; tileBatch?: number; threads?: number } = {}): Promise<LlavaOnevision> {
    const cfgPath = join(dir, 'config.json');
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(cfgPath, 'utf8'));
    } catch (e) {
      throw new KvlensInputError(`cannot read (${(e as Error).message})`, cfgPath);
    }
    const config = parseLlavaOnevisionConfig(raw, cfgPath);
    const ws = WeightSet.open(dir);
    const layout = detectLayout(ws);
    const text = parseQwen2Config(config.textConfigRaw, { where: `${cfgPath} (text_config)`, weights: layout.lm });
    const newline = toF32(ws.read(layout.newline));
    if (newline.length !== text.hiddenSize) throw new KvlensInputError(`"${layout.newline}" has ${newline.length} values, text hidden_size is ${text.hiddenSize}`, dir);
    const vision = await LlavaVisionPath.create(config, ws, layout.vision, text.hiddenSize, opts);
    let lm: DecoderLM;
    try {
      lm = await DecoderLM.fromWeights(ws, { config: text, device: opts.device, threads: opts.threads });
    } catch (e) {
      await vision.dispose();
      throw e;
    }
    return new LlavaOnevision(dir, config, text, ws, vision, lm, Float32Array.from(newline));
  }

  /** Layer counts for hook validation (src/taps/names.ts) and the language model's attention shape. */
  get dims(): ModelDims {
    const t = this.text;
    return { lmLayers: t.numLayers, visionLayers: this.config.vision.num_hidden_layers, kvHeads: t.numKvHeads, headDim: t.headDim, dModel: t.hiddenSize };
  }

  get eosTokenIds(): readonly number[] {
    return this.text.eosTokenIds;
  }

  get visionHooks(): readonly string[] {
    return this.vision.hookNames;
  }

  /** How many times the vision tower has run (a continuation on a cached image must not add to it). */
  get visionRuns(): number {
    return this.visionCalls;
  }

  /**
   * pixelValues [nImages, maxTiles, C, S, S] (zero-padded tiles of multi-image batches are dropped using imageSizes,
   * as HF does) or [totalRealTiles, C, S, S]; imageSizes (height, width) per image.
   */
  async imageFeatures(pixelValues: Tensor, imageSizes: Tensor | BigInt64Array | readonly number[], hooks: readonly string[] = []): Promise<ImageFeatures> {
    const sizes = imageSizesFrom(('data' in (imageSizes as Tensor) ? (imageSizes as Tensor).data : imageSizes) as BigInt64Array);
    const tilesPerImage = sizes.map((s) => tilesForImage(s, this.config));
    const real = realTiles(pixelValues, tilesPerImage);
    this.visionCalls++;
    const taps = await this.vision.run(real, hooks);
    const proj = taps.get(PROJECTOR_TAP)!; // [tile, token, dModel]
    if (proj.shape[1] !== Math.floor(this.config.vision.image_size / this.config.vision.patch_size) ** 2) {
      throw new KvlensInputError(`vision_feature_select_strategy "${this.config.selectStrategy}" leaves ${proj.shape[1]} tokens per tile, which cannot form a square patch grid (transformers fails here too)`, 'config.json');
    }
    const packed = packAllImages(toF32(proj), tilesPerImage, sizes, this.config, this.text.hiddenSize, this.newline);
    if (!hooks.includes(PROJECTOR_TAP)) taps.delete(PROJECTOR_TAP);
    return { packed: f32([packed.lengths.reduce((a, b) => a + b, 0), this.text.hiddenSize], packed.data), lengths: packed.lengths, tilesPerImage, taps };
  }

  /**
   * Token embeddings [batch, pos, dModel] with the packed image features written, in order, at every position whose
   * id is the image token (HF masked_scatter). The counts must agree exactly.
   */
  embedWithImages(inputIds: readonly (readonly number[])[], packed?: Tensor<'float32'>): Tensor<'float32'> {
    const emb = this.lm.embed(inputIds);
    const d = this.text.hiddenSize;
    const imageId = this.config.imageTokenIndex;
    const positions: number[] = [];
    inputIds.forEach((row, b) => row.forEach((id, s) => { if (id === imageId) positions.push(b * row.length + s); }));
    const nFeatures = packed ? packed.shape[0] : 0;
    if (positions.length !== nFeatures) {
      throw new KvlensInputError(`the prompt has ${positions.length} image tokens (id ${imageId}) but the images give ${nFeatures} image features; ` +
        'the prompt must hold exactly one <image> token per feature (use the processor to expand <image>)', 'input_ids');
    }
    const src = packed?.data as Float32Array | undefined;
    positions.forEach((p, i) => emb.data.set(src!.subarray(i * d, (i + 1) * d), p * d));
    return emb;
  }

  /**
   * Image path (when pixelValues are given) + language model in one call. Every tap name is validated before
   * anything runs; vision taps cover the real tiles of all images, LM taps the positions of this call.
   */
  async forward(req: ModelForwardRequest): Promise<ModelForwardResult> {
    const names = expandHooks(req.taps ?? [], this.dims);
    const imageTaps = names.filter(isImageTap);
    const lmTaps = names.filter((n) => !isImageTap(n));
    for (const n of imageTaps) {
      if (n !== IMAGE_PACKED_TAP && !this.vision.hookNames.includes(n)) {
        throw new KvlensUsageError(`tap "${n}" is not produced by the LLaVA-OneVision image path (available: ${[...this.vision.hookNames, IMAGE_PACKED_TAP].join(', ')})`);
      }
    }
    if (imageTaps.length && !req.pixelValues) throw new KvlensUsageError(`taps ${imageTaps.join(', ')} need pixelValues (this call has no image)`);
    if ((req.pixelValues === undefined) !== (req.imageSizes === undefined)) throw new KvlensUsageError('give pixelValues and imageSizes together');
    const ids = idRows(req.inputIds);
    const taps = new Map<string, Tensor>();
    let packed: Tensor<'float32'> | undefined;
    let imageTokens: number[] | undefined;
    if (req.pixelValues) {
      const feats = await this.imageFeatures(req.pixelValues, req.imageSizes!, imageTaps.filter((n) => n !== IMAGE_PACKED_TAP));
      packed = feats.packed;
      imageTokens = feats.lengths;
      for (const [k, v] of feats.taps) taps.set(k, v);
      taps.set(IMAGE_PACKED_TAP, feats.packed);
    }
    const embeds = this.embedWithImages(ids, packed); // [batch, pos, dModel]
    const out = await this.lm.forward({
      inputsEmbeds: embeds, past: req.past, taps: lmTaps, block: req.block, denseMask: req.denseMask, layerMasks: req.layerMasks,
      attentionMask2d: req.attentionMask2d, positionIds: req.positionIds, logitsAt: req.logitsAt, returnCache: true,
    });
    for (const [k, v] of out.taps) taps.set(k, v);
    const ordered = new Map<string, Tensor>(names.map((n) => [n, taps.get(n)!]));
    return { taps: ordered, logits: out.logits, logitsAt: out.logitsAt, cache: out.cache!, ...(imageTokens ? { imageTokens } : {}) };
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

/** Token ids as rows: [batch][pos] arrays or an integer tensor [batch, pos]. */
function idRows(x: Rows | Tensor): number[][] {
  if (!('shape' in x)) return x.map((r) => [...r]);
  if (x.shape.length !== 2) throw new KvlensUsageError(`inputIds must be 2-D [batch, pos], got [${x.shape.join(', ')}]`);
  const [B, S] = x.shape;
  const d = x.data as ArrayLike<number | bigint>;
  return Array.from({ length: B }, (_, b) => Array.from({ length: S }, (_, s) => Number(d[b * S + s])));
}

/** Keep each image's first tilesPerImage[i] tiles of a padded [nImages, maxTiles, C, S, S] batch. */
export function realTiles(pixel: Tensor, tilesPerImage: readonly number[]): Tensor {
  const s = pixel.shape;
  if (pixel.dtype !== 'float32') throw new KvlensInputError(`expected float32, got ${pixel.dtype}`, 'pixel_values');
  const total = tilesPerImage.reduce((a, b) => a + b, 0);
  if (s.length === 4) {
    if (s[0] !== total) throw new KvlensInputError(`${s[0]} tiles given, image_sizes imply ${total} (${tilesPerImage.join(' + ')})`, 'pixel_values');
    return pixel;
  }
  if (s.length !== 5) throw new KvlensInputError(`expected [images, tiles, C, S, S] or [tiles, C, S, S], got [${s.join(', ')}]`, 'pixel_values');
  if (s[0] !== tilesPerImage.length) throw new KvlensInputError(`${s[0]} images in pixel_values but ${tilesPerImage.length} image sizes`, 'pixel_values');
  const per = s[2] * s[3] * s[4];
  const out = new Float32Array(total * per);
  let o = 0;
  tilesPerImage.forEach((n, i) => {
    if (n > s[1]) throw new KvlensInputError(`image ${i} needs ${n} tiles for its size but pixel_values holds ${s[1]} per image`, 'pixel_values');
    out.set((pixel.data as Float32Array).subarray(i * s[1] * per, (i * s[1] + n) * per), o);
    o += n * per;
  });
  return tensor('float32', [total, s[2], s[3], s[4]], out);
}
