// Open a model directory by its config.json model_type and get the shared model interface (src/models/types.ts).
// The error for anything else names the file, the field and what kvlens supports. A family is added with one
// line in LOADERS.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../runtime/index.js';
import { describeValue, KvlensInputError, ownValue } from '../util/errors.js';
import { LlavaOnevision } from './llava_onevision/model.js';
import { LlavaNext } from './llava_next/model.js';
import { Qwen2Vl } from './qwen2_vl/model.js';
import { loadQwen2 } from './qwen2/index.js';
import { TextOnlyModel } from './text-only.js';
import type { FamilySpec, KvlensModel, VisionLanguageModelApi } from './types.js';
import { LLAVA_ONEVISION_SPEC } from './llava_onevision/spec.js';
import { LLAVA_NEXT_SPEC } from './llava_next/spec.js';
import { QWEN2_5_VL_SPEC, QWEN2_VL_SPEC } from './qwen2_vl/spec.js';
import type { VisionLanguageModel } from './vlm-base.js';

export type {
  KvlensModel, ModelDims, ModelForwardRequest, ModelForwardResult, StepOptions, GenerateOptions, GenerateResult,
  VisionLanguageModelApi, FamilySpec, ViewSpec, EncodedImages, PreparedInputs, PrepareInput, OriginalEncoder,
} from './types.js';

export interface LoadModelOptions {
  readonly device?: Device;
  readonly threads?: number;
  /** Build the vision tower's attention-probability outputs (vision.{L}.attn.probs). */
  readonly visionAttentionProbs?: boolean;
}

type Loader = (dir: string, opts: LoadModelOptions) => Promise<KvlensModel>;

const SPECS: Record<string, FamilySpec> = {
  llava_onevision: LLAVA_ONEVISION_SPEC, llava_next: LLAVA_NEXT_SPEC, qwen2_vl: QWEN2_VL_SPEC, qwen2_5_vl: QWEN2_5_VL_SPEC,
};

/** A vision-language family's data (views, towers, prompt format, original encoder) by model_type, without loading it. */
export function familySpec(modelType: string): FamilySpec {
  const spec = ownValue(SPECS, modelType); // own keys only: "constructor" is no family
  if (!spec) throw new KvlensInputError(`field "model_type" is "${modelType}"; a vision-language model is needed (supported: ${Object.keys(SPECS).join(', ')})`, 'config.json');
  return spec;
}

/** The image-token views (prompt positions) of a family, in token order: LLaVA base + highres, Qwen highres. */
export function sequenceViews(spec: FamilySpec): string[] {
  return spec.views.filter((v) => v.positions === 'sequence').map((v) => v.name);
}

type VisionLoader = (dir: string, opts: LoadModelOptions) => Promise<VisionLanguageModel>;

/** The vision-language families: model_type -> loader. */
const VISION_LOADERS: Record<string, VisionLoader> = {
  llava_onevision: (dir, opts) => LlavaOnevision.load(dir, opts),
  llava_next: (dir, opts) => LlavaNext.load(dir, opts),
  qwen2_vl: (dir, opts) => Qwen2Vl.load(dir, opts),
  qwen2_5_vl: (dir, opts) => Qwen2Vl.load(dir, opts),
};

const LOADERS: Record<string, Loader> = {
  ...VISION_LOADERS,
  qwen2: async (dir, opts) => new TextOnlyModel('qwen2', await loadQwen2(dir, opts)),
};

/** model_type values loadVisionModel accepts. */
export function visionModelTypes(): string[] {
  return Object.keys(VISION_LOADERS);
}

/** Whether a loaded model has the full vision-language interface. */
export function isVisionModel(m: KvlensModel): m is VisionLanguageModelApi {
  return 'spec' in m && 'encodeImages' in m;
}

/**
 * Open a vision-language checkpoint with its processor (tokenizer, chat template, image processor): the one door
 * every experiment, eval and extraction goes through. Text-only and unknown model_types fail naming the field.
 */
export async function loadVisionModel(dir: string, opts: LoadModelOptions = {}): Promise<VisionLanguageModelApi> {
  const type = readModelType(dir);
  const load = ownValue(VISION_LOADERS, type); // own keys only: model_type "constructor" gave a raw TypeError
  if (!load) throw new KvlensInputError(`field "model_type" is ${describeValue(type)}; a vision-language model is needed (supported: ${visionModelTypes().join(', ')})`, join(dir, 'config.json'));
  const model = await load(dir, opts);
  try {
    return await model.loadProcessor();
  } catch (e) {
    await model.dispose();
    throw e;
  }
}

/** model_type values loadModel accepts. */
export function supportedModelTypes(): string[] {
  return Object.keys(LOADERS);
}

export function readModelType(dir: string): string {
  const path = join(dir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new KvlensInputError(`cannot read model config (${(e as Error).message})`, path);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new KvlensInputError(`expected a JSON object with a "model_type" field, got ${describeValue(raw)}`, path);
  }
  const type = (raw as Record<string, unknown>).model_type;
  if (typeof type !== 'string') {
    throw new KvlensInputError(type === undefined ? 'field "model_type" is missing' : `field "model_type" must be a string, got ${describeValue(type)}`, path);
  }
  return type;
}

export async function loadModel(dir: string, opts: LoadModelOptions = {}): Promise<KvlensModel> {
  const type = readModelType(dir);
  const load = ownValue(LOADERS, type);
  if (!load) {
    const hint = /^siglip/.test(type) ? ' (a vision-only SigLIP tower: open it with SiglipVisionModel)' : '';
    throw new KvlensInputError(`field "model_type" is ${describeValue(type)}${hint}; supported values: ${supportedModelTypes().join(', ')}`, join(dir, 'config.json'));
  }
  return load(dir, opts);
}
