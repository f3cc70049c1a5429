// Input-agnostic image keys (paper §5.4 / protocols §6C): streaming cross-image key variance per (layer, position),
// the threshold, and the attention-blocking specs (plus a random control) it yields.
export { PositionWelford, checkSameGrid, VARIANCE_DEFINITION, type KeyGridShape, type VarianceStatistic } from './variance.js';
export { KeyVarianceState, type KeyStateMeta } from './state.js';
export { chooseThreshold, bimodalValley, otsu, histogram, logVariance, type ThresholdChoice, type ThresholdSpec, type ThresholdOptions } from './threshold.js';
export {
  blockSpecs, blockSpecsForPrompt, flaggedKeyBlocks, flaggedKeyBlocksViews, nearestGroup, blockedCount, mapCells, randomControl,
  type FlaggedKeys, type GridMatch, type BlockSpecOptions,
} from './blocking.js';
export {
  runKeyVariance, accumulateTaps, summarise, flaggedFromResult, flaggedViewsFromResult, KeyVarianceConfigSchema, KEY_TAP_PATTERN,
  type KeyVarianceConfig, type KeyVarianceConfigInput, type KeySource, type KeyVarianceRun, type VarianceMap,
} from './run.js';
export { GridGroups, gridKey, GROUPED_VIEW } from './groups.js';
