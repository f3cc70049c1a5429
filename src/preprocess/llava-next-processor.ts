// LlavaNextProcessor (transformers 4.46; llava-v1.6 / llama3-llava-next): the LLaVA-OneVision pipeline with LLaVA-NeXT's
// differences: CLIP tiles whose CLS token the model drops ("default" strategy), so one tile = (tile / patch)^2 tokens;
// no anyres_max downsample; short edge tiles resized by their shortest edge and centre-cropped (odd padding); a
// Llama-3 chat template when the checkpoint has none. Token map: base tile, high-res grid and row newlines as for OV.
//
//   const proc = await LlavaNextProcessor.fromPretrained(dir);
//   const out = await proc.prepare({ images: ['a.png'], question: 'What is this?' });

import { join } from 'node:path';
import { KvlensInputError } from '../util/errors.js';
import { parseAnyresImageConfig } from './llava-onevision-image.js';
import { LlavaOnevisionProcessor, processorSources } from './processor.js';
import { readProcessorFiles } from './processor-files.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { BUILTIN_LLAMA3_TEMPLATE, findChatTemplate } from '../tokenizer/chat-template.js';
import { readJsonFileIfExists } from '../util/json.js';


export class LlavaNextProcessor extends LlavaOnevisionProcessor {
  override readonly family: string = 'llava_next';

  static override async fromPretrained(dir: string): Promise<LlavaNextProcessor> {
    const files = await readProcessorFiles(dir);
    const imageConfig = parseAnyresImageConfig({ image_processor_type: 'LlavaNextImageProcessor', ...files.image }, files.imageSource);
    if (imageConfig.processorType !== 'LlavaNextImageProcessor') {
      throw new KvlensInputError(`field "image_processor_type" is "${imageConfig.processorType}", expected LlavaNextImageProcessor`, files.imageSource);
    }
    const configPath = join(dir, 'config.json');
    const config = (await readJsonFileIfExists(configPath)) ?? {};
    const procConfig = files.processor;
    const vision = (config.vision_config ?? {}) as Record<string, unknown>;
    const patchSize = typeof procConfig.patch_size === 'number' ? procConfig.patch_size : typeof vision.patch_size === 'number' ? vision.patch_size : 14;
    const strategy = procConfig.vision_feature_select_strategy ?? config.vision_feature_select_strategy ?? 'default';
    if (strategy !== 'default') {
      // "full" keeps CLIP's CLS token in every tile, which has no place in the patch grid kvlens maps tokens onto.
      throw new KvlensInputError(`vision_feature_select_strategy "${String(strategy)}" is not supported for LLaVA-NeXT (expected "default")`, configPath);
    }
    if (typeof vision.image_size === 'number' && vision.image_size !== imageConfig.tileSize) {
      throw new KvlensInputError(`vision_config.image_size ${vision.image_size} differs from the processor's tile size ${imageConfig.tileSize}`, configPath);
    }
    const pps = Math.floor(imageConfig.tileSize / patchSize);
    const imageToken = typeof procConfig.image_token === 'string' ? procConfig.image_token : '<image>';
    const tokenizer = await TextTokenizer.fromPretrained(dir);
    const imageTokenId = tokenizer.tokenToId(imageToken);
    if (imageTokenId === undefined) throw new KvlensInputError(`the tokenizer has no image token ${imageToken}`, dir);
    const configImageId = config.image_token_index ?? config.image_token_id; // transformers' attribute_map alias
    if (typeof configImageId === 'number' && configImageId !== imageTokenId) {
      throw new KvlensInputError(`image_token_index ${configImageId} differs from the tokenizer's id ${imageTokenId} for ${imageToken}`, configPath);
    }
    const template = await findChatTemplate(dir, { source: 'builtin:llama3', template: BUILTIN_LLAMA3_TEMPLATE });
    return new LlavaNextProcessor(imageConfig, { imageToken, patchSize, maxTiles: Infinity, baseTokens: pps * pps }, tokenizer, template, imageTokenId, processorSources(files, imageConfig.notes, template));
  }
}
