// kvlens' public API: what `import { ... } from 'kvlens'` gives (package.json main/types/exports point here).
//
//   import { loadVisionModel, extractFeatures, FeatureStore, runExperiment } from 'kvlens';
//   const model = await loadVisionModel('checkpoints/llava-onevision-qwen2-7b-ov-hf'); // any supported family
//   const p = await model.prepare({ images: ['cat.png'], question: 'What is this?' });
//   const out = await model.forward({ ...model.imageRequest(p), taps: ['lm.*.attn.k'] }); // keys [1, kvHead, pos, dHead]
//   const grids = model.imageViews(p);                                                  // view -> grid + positions
//
// Layers, from the model up: the model interface (every family behind one door), extraction into a feature store and
// its reader, the probes, the benchmark harness and the paper's experiments. Everything else is internal.

// ---- the model interface ----
export {
  loadVisionModel, loadModel, isVisionModel, familySpec, sequenceViews, readModelType, supportedModelTypes, visionModelTypes, type LoadModelOptions,
} from './models/index.js';
export type {
  VisionLanguageModelApi, KvlensModel, FamilySpec, ViewSpec, OriginalEncoder, EncodedImages, ModelDims, ModelForwardRequest, ModelForwardResult,
  StepOptions, GenerateOptions, GenerateResult, LogitsAt, BlockSpec, KvCache, Rows, ResolvedTap,
} from './models/types.js';
export { loadProcessor, processorModelTypes, type KvlensProcessor, type PreparedInputs } from './preprocess/load.js';
export type { PrepareInput, ImageInput } from './preprocess/processor.js';
export { viewGrid, viewGrids, type TokenMap, type ViewTokens } from './preprocess/token-map.js';
export { loadImage, decodeImage, type RgbImage } from './preprocess/image.js';
export { expandHooks, parseHook, selectLayers } from './taps/names.js';
export { TAP_TABLE, tapKind, storedViews, type TapKindInfo } from './taps/table.js';
export { TINY_MODELS, type TinyFamily, type TinyModel } from './models/synthetic/index.js';
export { tensor, f32, type Tensor } from './tensor/tensor.js';
export { mallocTuned, withMallocTunables, tunedGlibcTunables, MALLOC_TUNABLES } from './runtime/malloc.js';
export { startRecording, measured, sumSpans, type Span, type Recording } from './runtime/stats.js';

// ---- extraction and the feature store ----
export { extractFeatures, ExtractionStopped, type ExtractSummary, type ExtractHooks, type SkippedImage } from './extract/extract.js';
export { parseExtractConfig, type ExtractConfig, type ExtractConfigInput } from './extract/config.js';
export { FeatureStore, StoreWriter, mergeStores, type Grid, type ReadOptions, type StoredImage } from './store/index.js';

// ---- probes ----
export type { FeatureGrid, LabelMap } from './probes/grid.js';
export type { ResultRow, ProbeResult } from './probes/results.js';
export { runFewShotProbe, sampleEpisodes, type FewShotConfig, type FewShotItem, type FewShotSample } from './probes/fewshot-seg.js';
export { runCorrespondenceProbe, transferKeypoints, type CorrespondenceConfig, type CorrespondencePair } from './probes/correspondence.js';
export { runCosegProbe, cosegmentSet, type CosegConfig, type CosegImage } from './probes/coseg.js';
export { runSemanticSegProbe, runReferringSegProbe, type TextQuery, type SemanticSegSample, type ReferringSample } from './probes/text-query-seg.js';
export { runPropagationProbe, type PropagationConfig, type VideoSample } from './probes/propagation.js';
export { runProbeFlow, PROBE_TASKS, type ProbeFlowConfig, type ProbeFlowResult, type ProbeTask } from './experiments/flow.js';

// ---- benchmarks (POPE / MME / BLINK) and blocking ----
export {
  evaluateBenchmark, greedyOnPrefix, lmmsEvalFormat, blockSpecsFor, keyBlocksByLayer,
  type EvaluateOptions, type EvaluateResult, type EvalCondition, type KeyBlock, type PromptFormat,
} from './eval/index.js';

// ---- the paper's experiments ----
export { runExperiment, runExperimentResults, type RunSummary, type Outcome } from './experiments/run.js';
export { loadExperimentFile, parseExperimentConfig, EXPERIMENTS, type ExperimentConfig, type ExperimentName } from './experiments/config.js';
export { runSuite, SUITE_FAMILIES, type SuiteOptions, type SuiteSummary } from './experiments/suite.js';
export {
  runKeyVariance, flaggedFromResult, blockSpecsForPrompt, flaggedKeyBlocks, randomControl,
  type KeyVarianceRun, type KeySource, type FlaggedKeys,
} from './experiments/keys/index.js';
export { runBlockingBenchmarks } from './experiments/blocking.js';
export { runPrefix } from './experiments/prefix.js';
export { runUnderutil } from './experiments/underutil.js';

// ---- datasets, run directories, errors ----
export { iterateDataset, type DatasetName } from './data/index.js';
export { generateSynthetic } from './data/synthetic/index.js';
export { loadRunDir, type RunResults } from './results/rundir.js';
export { buildReport } from './report/build.js';
export { KvlensInputError, KvlensUsageError } from './util/errors.js';
