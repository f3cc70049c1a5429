// LLaVA-NeXT (e.g. llama3-llava-next-8b): CLIP tower + projector (one ORT session over tiles), anyres packing
// without anyres_max downsampling, image features scattered at the <image> tokens, then the shared decoder with
// the Llama adapter driven by inputs_embeds. The KvlensModel plumbing (forward with vision + LM taps in one map,
// continue on a cache, generate, dispose) is the shared one of src/models/vlm-base.ts.
//
//   const m = await LlavaNext.load(dir);
//   const out = await m.forward({ inputIds, pixelValues, imageSizes, taps: ['lm.*.attn.k'], logitsAt: 'last' });
//   const next = await m.continue(out.cache, [[tok]]);
//   await m.dispose();

import { join } from 'node:path';
import type { Device } from '../../runtime/index.js';
import { f32, toF32, type Tensor } from '../../tensor/tensor.js';
import { KvlensInputError } from '../../util/errors.js';
import type { DecoderLM } from '../lm/decoder.js';
import { weightNamesUnder, type DecoderConfig } from '../lm/config.js';
import { readConfigJson } from '../hf-config.js';
import { openModelWeights } from '../weight-names.js';
import { loadDecoderBeside, PROJECTOR_TAP, VisionLanguageModel, type ImagePathOutput } from '../vlm-base.js';
import type { PreparedInputs } from '../../preprocess/load.js';
import { anyresPixelBatch, flatSizes } from '../vision/pixel-batch.js';
import { LLAVA_NEXT_SPEC } from './spec.js';
import { parseLlamaConfig } from '../llama/config.js';
import { parseQwen2Config } from '../qwen2/config.js';
import { imageSizesFrom, realTiles } from '../llava_onevision/features.js';
import { parseLlavaNextConfig, type LlavaNextConfig } from './config.js';
import { llavaNextTilesForImage, packLlavaNext } from './pack.js';
import { LlavaNextVision, PRE_LAYRNORM } from './vision.js';

export interface LlavaNextLoadOptions {
  readonly device?: Device;
  readonly threads?: number;
  readonly tileBatch?: number;
  /** Build the vision tower's attention-probability outputs too. */
  readonly visionAttentionProbs?: boolean;
}

export interface LlavaNextImageFeatures extends ImagePathOutput {
  readonly tilesPerImage: number[];
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

export class LlavaNext extends VisionLanguageModel {
  readonly family = 'llava_next';
  readonly spec = LLAVA_NEXT_SPEC;
  protected readonly geometryField = 'imageSizes';

  private constructor(
    readonly dir: string,
    readonly config: LlavaNextConfig,
    readonly text: DecoderConfig,
    readonly lm: DecoderLM,
    protected readonly vision: LlavaNextVision,
    private readonly newline: Float32Array,
  ) {
    super();
  }

  static async load(dir: string, opts: LlavaNextLoadOptions = {}): Promise<LlavaNext> {
    const cfgPath = join(dir, 'config.json');
    const config = parseLlavaNextConfig(readConfigJson(cfgPath), cfgPath);
    const text = parseTextConfig(config.textConfigRaw, `${cfgPath} (text_config)`);
    const ws = openModelWeights(dir, 'llava_next');
    const newline = toF32(ws.read('image_newline'));
    if (newline.length !== text.hiddenSize) throw new KvlensInputError(`"image_newline" has ${newline.length} values, text hidden_size is ${text.hiddenSize}`, dir);
    const vision = await LlavaNextVision.create(config, ws, text.hiddenSize, { device: opts.device, attentionProbs: opts.visionAttentionProbs, tileBatch: opts.tileBatch });
    const lm = await loadDecoderBeside(vision, ws, text, opts);
    return new LlavaNext(dir, config, text, lm, vision, Float32Array.from(newline));
  }

  protected get visionLayers(): number {
    return this.config.vision.num_hidden_layers;
  }

  get imageTokenId(): number {
    return this.config.imageTokenIndex;
  }

  /** Vision-side hooks this model produces. */
  get visionHooks(): readonly string[] {
    return this.vision.outputNames.filter((n) => n !== PRE_LAYRNORM);
  }

  async imageFeatures(pixelValues: Tensor, imageSizes: Tensor | readonly number[], hooks: readonly string[] = []): Promise<LlavaNextImageFeatures> {
    const sizes = imageSizesFrom(('data' in (imageSizes as Tensor) ? (imageSizes as Tensor).data : imageSizes) as BigInt64Array);
    const tilesPerImage = sizes.map((s) => llavaNextTilesForImage(s, this.config));
    const real = realTiles(pixelValues, tilesPerImage);
    const fetch = [...new Set([...hooks, PROJECTOR_TAP])];
    const out = await this.vision.run(real, fetch);
    const D = this.text.hiddenSize;
    const packed = packLlavaNext(toF32(out.get(PROJECTOR_TAP)!), tilesPerImage, sizes, this.config, D, this.newline);
    const taps = new Map<string, Tensor>();
    for (const h of hooks) taps.set(h, out.get(h)!);
    const total = packed.lengths.reduce((a, b) => a + b, 0);
    return { packed: f32([total, D], packed.data), lengths: packed.lengths, tilesPerImage, units: tilesPerImage, taps };
  }

  protected runImagePath(pixelValues: Tensor, imageSizes: Tensor | readonly number[], hooks: readonly string[]): Promise<ImagePathOutput> {
    return this.imageFeatures(pixelValues, imageSizes, hooks);
  }

  protected batchPixels(prompts: readonly PreparedInputs[]): { pixelValues: Tensor; geometry: number[] } {
    return anyresPixelBatch(prompts, (size) => llavaNextTilesForImage(size, this.config));
  }

  protected geometryOf(p: PreparedInputs): number[] {
    return flatSizes(p);
  }
}
