// Public surface of preprocessing: images -> pixel tensors exactly as HF processors, prompts -> ids, token map.
export * from './anyres.js';
export * from './image.js';
export { pilResize8, resizeRgb, filterFromPilCode, type ResampleFilter } from './pil-resize.js';
export { parseAnyresImageConfig, processAnyresImages, anyresTiles, type AnyresImageConfig, type ProcessedAnyresImages } from './llava-onevision-image.js';
export { parseSiglipImageConfig, processSiglipImages, type SquashImageConfig } from './siglip-image.js';
export { parseQwen2VLImageConfig, processQwen2VLImages, smartResize, pyRound, type Qwen2VLImageConfig } from './qwen2vl-image.js';
export * from './token-map.js';
export { LlavaOnevisionProcessor, resolveImage, type ImageInput, type PrepareInput, type Prepared } from './processor.js';
export { LlavaNextProcessor } from './llava-next-processor.js';
export { Qwen2VLProcessor, type Qwen2VLPrepared } from './qwen2vl-processor.js';
export { loadProcessor, processorModelTypes, type KvlensProcessor, type PreparedInputs } from './load.js';
