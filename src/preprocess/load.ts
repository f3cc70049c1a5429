// loadProcessor(dir): the processor of a checkpoint by its config.json model_type, behind one surface:
// prepare({ images, question, prefix, systemPrompt }) -> { inputIds, pixelValues, imageSizes | imageGridThw, tokenMap }.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import type { FoundTemplate } from '../tokenizer/chat-template.js';
import { describeValue, KvlensInputError, ownValue } from '../util/errors.js';
import { LlavaOnevisionProcessor, type PrepareInput, type ProcessorSources } from './processor.js';
import { LlavaNextProcessor } from './llava-next-processor.js';
import { Qwen2VLProcessor } from './qwen2vl-processor.js';
import type { TokenMap } from './token-map.js';

/** What every family's prepare() returns (model-ready inputs plus the token map). */
export interface PreparedInputs {
  readonly inputIds: Tensor<'int64'>;
  readonly pixelValues?: Tensor<'float32'>;
  /** LLaVA families: [nImages, 2] (height, width) */
  readonly imageSizes?: Tensor<'int64'>;
  /** Qwen2-VL families: [nImages, 3] (t, h, w) in patches */
  readonly imageGridThw?: Tensor<'int64'>;
  /** every position -> text or (image, view, row, col, original-pixel box) */
  readonly tokenMap: TokenMap;
  /** the rendered prompt string (one placeholder per image) */
  readonly prompt: string;
  /** per image: the decoded size the processor saw (height, width) */
  readonly imageSize: readonly { readonly height: number; readonly width: number }[];
}

export interface KvlensProcessor {
  /** config.json model_type */
  readonly family: string;
  readonly tokenizer: TextTokenizer;
  readonly template: FoundTemplate;
  /** Which files the settings came from, and notes on sources that disagreed. */
  readonly sources: ProcessorSources;
  prepare(input: PrepareInput): Promise<PreparedInputs>;
}

const LOADERS: Record<string, (dir: string) => Promise<KvlensProcessor>> = {
  llava_onevision: (dir) => LlavaOnevisionProcessor.fromPretrained(dir),
  llava_next: (dir) => LlavaNextProcessor.fromPretrained(dir),
  qwen2_vl: (dir) => Qwen2VLProcessor.fromPretrained(dir),
  qwen2_5_vl: (dir) => Qwen2VLProcessor.fromPretrained(dir),
};

export function processorModelTypes(): string[] {
  return Object.keys(LOADERS);
}

export async function loadProcessor(dir: string): Promise<KvlensProcessor> {
  const path = join(dir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new KvlensInputError(`cannot read model config (${(e as Error).message})`, path);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new KvlensInputError(`expected a JSON object, got ${describeValue(raw)}`, path);
  const type = (raw as Record<string, unknown>).model_type;
  const load = typeof type === 'string' ? ownValue(LOADERS, type) : undefined;
  if (!load) throw new KvlensInputError(`field "model_type" is ${describeValue(type)}; processors exist for ${processorModelTypes().join(', ')}`, path);
  return load(dir);
}
