// Qwen2 language model: the shared decoder with Qwen2's config defaults (q/k/v biases, RMSNorm, SwiGLU).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DecoderLM } from '../lm/decoder.js';
import { weightNamesUnder } from '../lm/config.js';
import type { Device } from '../../runtime/device.js';
import { KvlensInputError } from '../../util/errors.js';
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
  let raw = opts.rawConfig;
  if (raw === undefined) {
    try {
      raw = JSON.parse(readFileSync(where, 'utf8'));
    } catch (e) {
      throw new KvlensInputError(`cannot read config (${(e as Error).message})`, where);
    }
  }
  const config = parseQwen2Config(raw, { where, weights: weightNamesUnder(opts.prefix ?? '') });
  return DecoderLM.load(dir, { config, device: opts.device, threads: opts.threads });
}
