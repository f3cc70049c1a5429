// Qwen2 language model: the shared decoder with Qwen2's config defaults (q/k/v biases, RMSNorm, SwiGLU).

import { join } from 'node:path';
import { DecoderLM } from '../lm/decoder.js';
import { weightNamesUnder } from '../lm/config.js';
import type { Device } from '../../runtime/device.js';
import { readConfigJson } from '../hf-config.js';
import { parseQwen2Config } from './config.js';

export interface Qwen2LoadOptions {
  readonly device?: Device;
  readonly threads?: number;
  /** Outer weight prefix: "" for Qwen2ForCausalLM, "language_model." inside LLaVA-OneVision. */
  readonly prefix?: string;
  /** Use this (raw, HF-style) config instead of <dir>/config.json, e.g. a VLM's text_config. */
  readonly rawConfig?: unknown;
}

export async function loadQwen2(dir: string, opts: Qwen2LoadOptions = {}): Promise<DecoderLM> {
  const where = join(dir, 'config.json');
  const raw = opts.rawConfig !== undefined ? opts.rawConfig : readConfigJson(where, 'cannot read config');
  const config = parseQwen2Config(raw, { where, weights: weightNamesUnder(opts.prefix ?? '') });
  return DecoderLM.load(dir, { config, device: opts.device, threads: opts.threads });
}
