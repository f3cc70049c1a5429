// LLaVA-OneVision: SigLIP tower + projector (one ORT session over tiles), anyres packing in JS, image features
// scattered into the token embeddings at the <image> positions (HF masked_scatter), then the Qwen2 decoder
// driven with inputs_embeds (the shared plumbing of src/models/vlm-base.ts). Every weight layout transformers
// loads resolves through src/models/weight-names.ts.

import { join } from 'node:path';
import type { Device } from '../../runtime/index.js';
import type { WeightSet } from '../../tensor/safetensors.js';
import { f32, toF32, type Tensor } from '../../tensor/tensor.js';
import { KvlensInputError } from '../../util/errors.js';
import type { DecoderLM } from '../lm/index.js';
import type { DecoderConfig, DecoderWeightNames } from '../lm/config.js';
import { readConfigJson } from '../hf-config.js';
import { openModelWeights } from '../weight-names.js';
import { loadDecoderBeside, PROJECTOR_TAP, VisionLanguageModel, type ImagePathOutput } from '../vlm-base.js';
import type { PreparedInputs } from '../../preprocess/load.js';
import { anyresPixelBatch, flatSizes } from '../vision/pixel-batch.js';
import { LLAVA_ONEVISION_SPEC } from './spec.js';
import { parseQwen2Config } from '../qwen2/config.js';
import { parseLlavaOnevisionConfig, type LlavaOnevisionConfig } from './config.js';
import { imageSizesFrom, packAllImages, realTiles, tilesForImage } from './features.js';
import { LlavaVisionPath, type VisionPrefixes } from './vision.js';

/** Tensor names in the legacy layout; the weight set resolves the >= 4.52 spelling (src/models/weight-names.ts). */
const LAYOUT: { vision: VisionPrefixes; newline: string; lm: DecoderWeightNames } = {
  vision: { tower: 'vision_tower.vision_model.', projector: 'multi_modal_projector.' },
  newline: 'image_newline',
  lm: { model: 'language_model.model.', lmHead: 'language_model.lm_head.weight' },
};

export interface ImageFeatures extends ImagePathOutput {
  /** real (unpadded) tiles per image */
  readonly tilesPerImage: number[];
}

export class LlavaOnevision extends VisionLanguageModel {
  readonly family = 'llava_onevision';
  readonly spec = LLAVA_ONEVISION_SPEC;
  protected readonly geometryField = 'imageSizes';
  private visionCalls = 0;

  private constructor(
    readonly dir: string,
    readonly config: LlavaOnevisionConfig,
    readonly text: DecoderConfig,
    readonly weights: WeightSet,
    protected readonly vision: LlavaVisionPath,
    readonly lm: DecoderLM,
    private readonly newline: Float32Array,
  ) {
    super();
  }

  static async load(dir: string, opts: { device?: Device; tileBatch?: number; threads?: number; visionAttentionProbs?: boolean } = {}): Promise<LlavaOnevision> {
    const cfgPath = join(dir, 'config.json');
    const config = parseLlavaOnevisionConfig(readConfigJson(cfgPath), cfgPath);
    const ws = openModelWeights(dir, 'llava_onevision');
    const text = parseQwen2Config(config.textConfigRaw, { where: `${cfgPath} (text_config)`, weights: LAYOUT.lm });
    const newline = toF32(ws.read(LAYOUT.newline));
    if (newline.length !== text.hiddenSize) throw new KvlensInputError(`"${LAYOUT.newline}" has ${newline.length} values, text hidden_size is ${text.hiddenSize}`, dir);
    const vision = await LlavaVisionPath.create(config, ws, LAYOUT.vision, text.hiddenSize, { device: opts.device, tileBatch: opts.tileBatch, attentionProbs: opts.visionAttentionProbs });
    const lm = await loadDecoderBeside(vision, ws, text, opts);
    return new LlavaOnevision(dir, config, text, ws, vision, lm, Float32Array.from(newline));
  }

  protected get visionLayers(): number {
    return this.config.vision.num_hidden_layers;
  }

  get imageTokenId(): number {
    return this.config.imageTokenIndex;
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
    return { packed: f32([packed.lengths.reduce((a, b) => a + b, 0), this.text.hiddenSize], packed.data), lengths: packed.lengths, tilesPerImage, units: tilesPerImage, taps };
  }

  protected runImagePath(pixelValues: Tensor, imageSizes: Tensor | readonly number[], hooks: readonly string[]): Promise<ImagePathOutput> {
    return this.imageFeatures(pixelValues, imageSizes, hooks);
  }

  protected batchPixels(prompts: readonly PreparedInputs[]): { pixelValues: Tensor; geometry: number[] } {
    return anyresPixelBatch(prompts, (size) => tilesForImage(size, this.config));
  }

  protected geometryOf(p: PreparedInputs): number[] {
    return flatSizes(p);
  }
}
