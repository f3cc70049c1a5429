// Open a model directory by its config.json model_type. The error for anything else names the file, the
// field and what kvlens supports.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../runtime/index.js';
import { KvlensInputError } from '../util/errors.js';
import { LlavaOnevision } from './llava_onevision/model.js';
import { SiglipVisionModel } from './siglip/model.js';

export const SUPPORTED_MODEL_TYPES = ['llava_onevision', 'siglip_vision_model', 'siglip'] as const;

export type LoadedModel =
  | { readonly kind: 'llava_onevision'; readonly model: LlavaOnevision }
  | { readonly kind: 'siglip_vision_model'; readonly model: SiglipVisionModel };

export function readModelType(dir: string): string {
  const path = join(dir, 'config.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new KvlensInputError(`cannot read model config (${(e as Error).message})`, path);
  }
  if (typeof raw.model_type !== 'string') throw new KvlensInputError('field "model_type" is missing', path);
  return raw.model_type;
}

export async function loadModel(dir: string, opts: { device?: Device } = {}): Promise<LoadedModel> {
  const type = readModelType(dir);
  switch (type) {
    case 'llava_onevision': return { kind: 'llava_onevision', model: await LlavaOnevision.load(dir, opts) };
    case 'siglip_vision_model':
    case 'siglip': return { kind: 'siglip_vision_model', model: await SiglipVisionModel.load(dir, opts) };
    default:
      throw new KvlensInputError(`field "model_type" is "${type}"; supported values: ${SUPPORTED_MODEL_TYPES.join(', ')}`, join(dir, 'config.json'));
  }
}
