// Qwen2VLProcessor (Qwen2-VL and Qwen2.5-VL): images + prompt -> { inputIds, pixelValues, imageGridThw, tokenMap }.
// The chat template (the checkpoint's, else a built-in Qwen2-VL ChatML) writes
// "<|vision_start|><|image_pad|><|vision_end|>" per image; the single <|image_pad|> is then repeated once per merged
// token, t*h*w / merge^2 (what transformers does by repeating the string before tokenising). Token map: one
// "highres" token per merged cell, raster order, boxes in original pixels (see mergedGridTokenInfos).
//
//   const proc = await Qwen2VLProcessor.fromPretrained(dir);
//   const out = await proc.prepare({ images: ['a.png'], question: 'What is this?' });

import { join } from 'node:path';
import { KvlensInputError } from '../util/errors.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { processorSources, resolveImage, type PrepareInput, type ProcessorSources } from './processor.js';
import { readProcessorFiles } from './processor-files.js';
import { parseQwen2VLImageConfig, processQwen2VLImages, smartResize, type Qwen2VLImageConfig } from './qwen2vl-image.js';
import { mergedGridTokenInfos, tokenMapFromInfos, type MergedGridLayout, type TokenMap } from './token-map.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { BUILTIN_QWEN2VL_TEMPLATE, findChatTemplate, type FoundTemplate } from '../tokenizer/chat-template.js';
import { expandImagePlaceholders, renderPrompt } from '../tokenizer/prompt.js';
import { readJsonFileIfExists } from '../util/json.js';

export interface Qwen2VLPrepared {
  /** [1, seq] int64 */
  readonly inputIds: Tensor<'int64'>;
  /** [sum of t*h*w, 3 * temporal * patch * patch] float32 (absent without images) */
  readonly pixelValues?: Tensor<'float32'>;
  /** [nImages, 3] int64 (t, h, w) in patches */
  readonly imageGridThw?: Tensor<'int64'>;
  readonly tokenMap: TokenMap;
  readonly prompt: string;
  /** per image: original size, smart_resize size and the merged token's side in pixels */
  readonly layouts: readonly MergedGridLayout[];
  /** per image: the decoded size the processor saw */
  readonly imageSize: readonly { readonly height: number; readonly width: number }[];
}


export class Qwen2VLProcessor {
  constructor(
    readonly family: string,
    readonly imageConfig: Qwen2VLImageConfig,
    readonly tokenizer: TextTokenizer,
    readonly template: FoundTemplate,
    /** <|image_pad|> */
    readonly imageTokenId: number,
    readonly sources: ProcessorSources = { imageProcessor: 'defaults', imageProcessorFile: undefined, notes: [] },
  ) {}

  static async fromPretrained(dir: string): Promise<Qwen2VLProcessor> {
    const files = await readProcessorFiles(dir);
    const imageConfig = parseQwen2VLImageConfig(files.image, files.imageSource);
    const configPath = join(dir, 'config.json');
    const config = (await readJsonFileIfExists(configPath)) ?? {};
    const family = typeof config.model_type === 'string' ? config.model_type : 'qwen2_vl';
    const vision = (config.vision_config ?? {}) as Record<string, unknown>;
    for (const [field, mine] of [['patch_size', imageConfig.patchSize], ['spatial_merge_size', imageConfig.mergeSize], ['temporal_patch_size', imageConfig.temporalPatchSize]] as const) {
      if (typeof vision[field] === 'number' && vision[field] !== mine) {
        throw new KvlensInputError(`vision_config.${field} ${String(vision[field])} differs from the image processor's ${mine}`, configPath);
      }
    }
    const tokenizer = await TextTokenizer.fromPretrained(dir);
    const imageTokenId = tokenizer.tokenToId('<|image_pad|>');
    if (imageTokenId === undefined) throw new KvlensInputError('the tokenizer has no <|image_pad|> token', dir);
    if (typeof config.image_token_id === 'number' && config.image_token_id !== imageTokenId) {
      throw new KvlensInputError(`image_token_id ${config.image_token_id} differs from the tokenizer's id ${imageTokenId} for <|image_pad|>`, configPath);
    }
    const template = await findChatTemplate(dir, { source: 'builtin:qwen2vl', template: BUILTIN_QWEN2VL_TEMPLATE });
    return new Qwen2VLProcessor(family, imageConfig, tokenizer, template, imageTokenId, processorSources(files, imageConfig.notes, template));
  }

  /** The smart_resize layout of an image of the given size. */
  layout(original: { height: number; width: number }): MergedGridLayout {
    const c = this.imageConfig;
    const unit = c.patchSize * c.mergeSize;
    const resized = c.doResize ? smartResize(original.height, original.width, unit, c.minPixels, c.maxPixels) : original;
    return { original: { height: original.height, width: original.width }, resized, unit };
  }

  async prepare(input: PrepareInput): Promise<Qwen2VLPrepared> {
    const images = await Promise.all(input.images.map((img, i) => resolveImage(img, i)));
    const prompt = renderPrompt(input, images.length, this.template, this.tokenizer);
    const rawIds = this.tokenizer.encode(prompt);
    expandImagePlaceholders(rawIds, this.imageTokenId, images.map(() => 0), this.imageTokenId, '<|image_pad|>');
    const layouts = images.map((img) => this.layout(img));
    let pixelValues: Tensor<'float32'> | undefined;
    let imageGridThw: Tensor<'int64'> | undefined;
    if (images.length > 0) ({ pixelValues, imageGridThw } = processQwen2VLImages(images, this.imageConfig));
    const counts = layouts.map((l) => (l.resized.height / l.unit) * (l.resized.width / l.unit));
    const { ids, runs } = expandImagePlaceholders(rawIds, this.imageTokenId, counts, this.imageTokenId, '<|image_pad|>');
    const tokenMap = tokenMapFromInfos(ids.length, runs, layouts.map((l, i) => mergedGridTokenInfos(i, l)));
    return {
      inputIds: tensor('int64', [1, ids.length], BigInt64Array.from(ids.map((x) => BigInt(x)))),
      pixelValues, imageGridThw, tokenMap, prompt, layouts, imageSize: images.map((im) => ({ height: im.height, width: im.width })),
    };
  }
}
