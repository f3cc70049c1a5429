// LlavaOnevisionProcessor: images + prompt -> { inputIds, pixelValues, imageSizes, tokenMap }, the same ids and
// pixels transformers 4.46's processor produces, plus the map from every position back to the image.
//
//   const proc = await LlavaOnevisionProcessor.fromPretrained(dir);
//   const out = await proc.prepare({ images: ['a.png'], question: 'What is this?', systemPrompt: null });

import { join } from 'node:path';
import { KvlensInputError } from '../util/errors.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { anyresTokenCount, parseAnyresMax, type AnyresLayout } from './anyres.js';
import { decodeImage, loadImage, type RgbImage } from './image.js';
import { parseAnyresImageConfig, processAnyresImages, type AnyresImageConfig } from './llava-onevision-image.js';
import { buildTokenMap, type TokenMap } from './token-map.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { findChatTemplate, type FoundTemplate } from '../tokenizer/chat-template.js';
import { expandImagePlaceholders, renderPrompt, type PromptInput } from '../tokenizer/prompt.js';
import { readJsonFileIfExists } from '../util/json.js';
import { readProcessorFiles, type ProcessorFiles } from './processor-files.js';

/** An image given as a file path, encoded bytes, or decoded RGB. */
export type ImageInput = string | Uint8Array | RgbImage;

export async function resolveImage(img: ImageInput, index: number): Promise<RgbImage> {
  if (typeof img === 'string') return loadImage(img);
  if (img instanceof Uint8Array) return decodeImage(img, `image ${index}`);
  return img;
}

export interface PrepareInput extends PromptInput {
  readonly images: readonly ImageInput[];
}

export interface Prepared {
  /** [1, seq] int64 */
  readonly inputIds: Tensor<'int64'>;
  /** [nImages, maxTiles, 3, tile, tile] float32 (absent when there are no images) */
  readonly pixelValues?: Tensor<'float32'>;
  /** [nImages, 2] int64 (height, width) */
  readonly imageSizes?: Tensor<'int64'>;
  readonly tokenMap: TokenMap;
  /** the rendered prompt string (one placeholder per image) */
  readonly prompt: string;
  readonly layouts: readonly AnyresLayout[];
  /** real tile count per image (pixelValues is zero-padded to the max) */
  readonly tilesPerImage: readonly number[];
  /** per image: the decoded size the processor saw */
  readonly imageSize: readonly { readonly height: number; readonly width: number }[];
}

/** Which files a processor's settings came from, and what it noted while reading them. */
export interface ProcessorSources {
  /** "<dir>/processor_config.json (image_processor)" or "<dir>/preprocessor_config.json" */
  readonly imageProcessor: string;
  /** the file holding the image-processor settings (a feature store hashes it into its identity) */
  readonly imageProcessorFile: string | undefined;
  /** one sentence per source that was shadowed or caveat, e.g. a chat template another file overrides */
  readonly notes: readonly string[];
}

/**
 * The file holding a checkpoint's image-processor settings (hashed into a feature store's identity); processors that
 * read none (built-in defaults) fall back to the usual preprocessor_config.json path.
 */
export function imageProcessorFileOf(sources: Pick<ProcessorSources, 'imageProcessorFile'>, dir: string): string {
  return sources.imageProcessorFile ?? join(dir, 'preprocessor_config.json');
}

export function processorSources(files: ProcessorFiles, imageNotes: readonly string[], template: FoundTemplate): ProcessorSources {
  return { imageProcessor: files.imageSource, imageProcessorFile: files.imageFile, notes: [...files.notes, ...imageNotes, ...(template.notes ?? [])] };
}

/** What the processor needs from config.json / processor_config.json. */
export interface ProcessorGeometry {
  readonly imageToken: string;
  readonly patchSize: number;
  readonly maxTiles: number;
  readonly baseTokens: number;
}


/**
 * A template that writes the BOS token itself, tokenised by a tokenizer whose post-processor adds it again (Llama-3's
 * tokenizer.json), would start with two; keep one, as the released LLaVA-NeXT prompts have.
 */
export function dropRepeatedBos(ids: number[], tok: TextTokenizer): number[] {
  const bos = tok.specialToken('bos_token');
  const id = bos === undefined ? undefined : tok.tokenToId(bos);
  return id !== undefined && ids.length > 1 && ids[0] === id && ids[1] === id ? ids.slice(1) : ids;
}

export class LlavaOnevisionProcessor {
  /** The model_type this processor prepares inputs for. */
  readonly family: string = 'llava_onevision';

  constructor(
    readonly imageConfig: AnyresImageConfig,
    readonly geometry: ProcessorGeometry,
    readonly tokenizer: TextTokenizer,
    readonly template: FoundTemplate,
    readonly imageTokenId: number,
    readonly sources: ProcessorSources = { imageProcessor: 'defaults', imageProcessorFile: undefined, notes: [] },
  ) {}

  static async fromPretrained(dir: string): Promise<LlavaOnevisionProcessor> {
    const files = await readProcessorFiles(dir);
    const imageConfig = parseAnyresImageConfig(files.image, files.imageSource);
    const config = (await readJsonFileIfExists(join(dir, 'config.json'))) ?? {};
    const procConfig = files.processor;
    const vision = (config.vision_config ?? {}) as Record<string, unknown>;
    const patchSize = typeof vision.patch_size === 'number' ? vision.patch_size : 14;
    const pps = Math.floor(imageConfig.tileSize / patchSize);
    const baseTokens = typeof procConfig.num_image_tokens === 'number' ? procConfig.num_image_tokens : pps * pps;
    if (baseTokens !== pps * pps) {
      throw new KvlensInputError(`num_image_tokens ${baseTokens} is not (tile ${imageConfig.tileSize} / patch ${patchSize})^2 = ${pps * pps}`, join(dir, 'processor_config.json'));
    }
    const strategy = procConfig.vision_feature_select_strategy ?? config.vision_feature_select_strategy ?? 'full';
    if (strategy !== 'full') {
      // transformers drops one token per tile for "default", which a CLS-less SigLIP grid cannot absorb.
      throw new KvlensInputError(`vision_feature_select_strategy "${String(strategy)}" is not supported for LLaVA-OneVision (expected "full")`, dir);
    }
    let maxTiles: number;
    try {
      maxTiles = parseAnyresMax(typeof config.vision_aspect_ratio === 'string' ? config.vision_aspect_ratio : 'anyres_max_9');
    } catch (e) {
      throw new KvlensInputError((e as Error).message, join(dir, 'config.json'));
    }
    const imageToken = typeof procConfig.image_token === 'string' ? procConfig.image_token : '<image>';
    const tokenizer = await TextTokenizer.fromPretrained(dir);
    const imageTokenId = tokenizer.tokenToId(imageToken);
    if (imageTokenId === undefined) throw new KvlensInputError(`the tokenizer has no image token ${imageToken}`, dir);
    const configImageId = config.image_token_index ?? config.image_token_id; // transformers' attribute_map alias
    if (typeof configImageId === 'number' && configImageId !== imageTokenId) {
      throw new KvlensInputError(`image_token_index ${configImageId} differs from the tokenizer's id ${imageTokenId} for ${imageToken}`, join(dir, 'config.json'));
    }
    const template = await findChatTemplate(dir);
    return new LlavaOnevisionProcessor(imageConfig, { imageToken, patchSize, maxTiles, baseTokens }, tokenizer, template, imageTokenId, processorSources(files, imageConfig.notes, template));
  }

  /** Token count of one image of the given original size. */
  imageTokenCount(layout: AnyresLayout): number {
    return anyresTokenCount(layout, this.geometry.baseTokens).total;
  }

  async prepare(input: PrepareInput): Promise<Prepared> {
    const images = await Promise.all(input.images.map((img, i) => resolveImage(img, i)));
    const prompt = renderPrompt(input, images.length, this.template, this.tokenizer);
    const rawIds = dropRepeatedBos(this.tokenizer.encode(prompt), this.tokenizer);
    // fail on a placeholder/image mismatch before the (costly) pixel work
    expandImagePlaceholders(rawIds, this.imageTokenId, images.map(() => 0), this.imageTokenId, this.geometry.imageToken);
    let pixelValues: Tensor<'float32'> | undefined;
    let imageSizes: Tensor<'int64'> | undefined;
    let layouts: readonly AnyresLayout[] = [];
    let tilesPerImage: readonly number[] = [];
    if (images.length > 0) {
      const processed = processAnyresImages(images, this.imageConfig, this.geometry);
      ({ pixelValues, imageSizes, layouts, tilesPerImage } = processed);
    }
    const counts = layouts.map((l) => this.imageTokenCount(l));
    const { ids, runs } = expandImagePlaceholders(rawIds, this.imageTokenId, counts, this.imageTokenId, this.geometry.imageToken);
    const tokenMap = buildTokenMap(ids.length, runs, layouts, this.geometry.patchSize);
    return {
      inputIds: tensor('int64', [1, ids.length], BigInt64Array.from(ids.map((x) => BigInt(x)))),
      pixelValues, imageSizes, tokenMap, prompt, layouts, tilesPerImage, imageSize: images.map((im) => ({ height: im.height, width: im.width })),
    };
  }
}
