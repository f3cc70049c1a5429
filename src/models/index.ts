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
import type { KvlensModel } from './types.js';

export type { KvlensModel, ModelDims, ModelForwardRequest, ModelForwardResult, StepOptions, GenerateOptions, GenerateResult } from './types.js';

export interface LoadModelOptions {
  readonly device?: Device;
  readonly threads?: number;
}

type Loader = (dir: string, opts: LoadModelOptions) => Promise<KvlensModel>;

const LOADERS: Record<string, Loader> = {
  llava_onevision: (dir, opts) => LlavaOnevision.load(dir, opts),
  llava_next: (dir, opts) => LlavaNext.load(dir, opts),
  qwen2_vl: (dir, opts) => Qwen2Vl.load(dir, opts),
  qwen2_5_vl: (dir, opts) => Qwen2Vl.load(dir, opts),
  qwen2: async (dir, opts) => new TextOnlyModel('qwen2', await loadQwen2(dir, opts)),
};

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
