export { DecoderLM, argmaxRows, sliceAxis2, type ForwardRequest, type ForwardResult, type LoadOptions, type Rows } from './decoder.js';
export { type DecoderConfig, type DecoderWeightNames, weightNamesUnder, type MlpAct } from './config.js';
export { type KvCache, cacheBytes } from './cache.js';
export { type BlockSpec, span, causalMask, queryPositions } from './masks.js';
export { ropeTables, mropeTables, inverseFrequencies } from './rope.js';
