// The un-finetuned encoder baseline: a standalone vision tower checkpoint (SigLIP for LLaVA-OneVision, CLIP
// ViT-L/14-336 for LLaVA-NeXT, or any supported tower) with its own image processor, whose layers are compared to
// the VLM's fine-tuned tower. Opened by config.json model_type; its outputs answer to the baseline.* hooks (and the
// old siglip.* names), per tile [tile, token, d] with `clsTokens` leading tokens (CLIP: 1) before the patch grid.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../../runtime/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { RgbImage } from '../../preprocess/image.js';
import { parseSiglipImageConfig, processSiglipImages, type SquashImageConfig } from '../../preprocess/siglip-image.js';
import { parseClipImageConfig, processClipImages, type ClipImageConfig } from '../../preprocess/clip-image.js';
import { describeValue, KvlensInputError, KvlensUsageError, ownValue } from '../../util/errors.js';
import { readConfigJson } from '../hf-config.js';
import { SiglipVisionModel } from '../siglip/model.js';
import { ClipVisionModel } from '../clip/model.js';
import { isBaselineTap } from '../../taps/table.js';

export interface EncoderBaseline {
  /** config.json model_type of the checkpoint */
  readonly modelType: string;
  readonly kind: 'siglip' | 'clip';
  readonly dir: string;
  readonly layers: number;
  /** patch grid side of a tile */
  readonly patchesPerSide: number;
  /** tokens before the patch grid (CLIP's CLS) */
  readonly clsTokens: number;
  /** images -> pixel_values [n, 3, S, S] with the tower's own processor */
  preprocess(images: readonly RgbImage[]): Tensor<'float32'>;
  /** taps named baseline.* (or siglip.*) -> [tile, token, d] each, under the names asked */
  run(pixelValues: Tensor, taps: readonly string[]): Promise<Map<string, Tensor>>;
  dispose(): Promise<void>;
}

/** What both standalone towers offer. */
interface Tower {
  readonly dims: { readonly layers: number; readonly patchesPerSide: number };
  forward(pixel: Tensor, req: { taps?: readonly string[] }): Promise<{ taps: Map<string, Tensor> }>;
  dispose(): Promise<void>;
}

const siglipProcessor = (cfg: SquashImageConfig) => (images: readonly RgbImage[]) => processSiglipImages(images, cfg);
const clipProcessor = (cfg: ClipImageConfig) => (images: readonly RgbImage[]) => processClipImages(images, cfg);

const KINDS: Record<string, 'siglip' | 'clip'> = { siglip_vision_model: 'siglip', siglip: 'siglip', clip_vision_model: 'clip', clip: 'clip' };

/** model_type values an encoder baseline may have. */
export function encoderBaselineTypes(): string[] {
  return Object.keys(KINDS);
}

/** The tower's own output name for a baseline hook: baseline.3.out -> siglip.3.out / clip.3.out. */
function towerName(tap: string, kind: 'siglip' | 'clip'): string {
  if (!isBaselineTap(tap)) throw new KvlensUsageError(`tap "${tap}" is not an encoder-baseline hook (baseline.* or siglip.*)`);
  return `${kind}.${tap.slice(tap.indexOf('.') + 1)}`;
}

export async function loadEncoderBaseline(dir: string, opts: { device?: Device } = {}): Promise<EncoderBaseline> {
  const cfgPath = join(dir, 'config.json');
  const raw = readConfigJson(cfgPath) as Record<string, unknown> | null;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new KvlensInputError(`expected a JSON object of config fields, got ${describeValue(raw)}`, cfgPath);
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : 'siglip_vision_model';
  const kind = ownValue(KINDS, modelType);
  if (!kind) throw new KvlensInputError(`field "model_type" is "${modelType}"; an encoder baseline is a vision tower: ${encoderBaselineTypes().join(', ')}`, cfgPath);
  const prePath = join(dir, 'preprocessor_config.json');
  let pre: unknown;
  try {
    pre = JSON.parse(readFileSync(prePath, 'utf8'));
  } catch (e) {
    throw new KvlensInputError(`the encoder baseline needs its preprocessor_config.json (${(e as Error).message})`, prePath);
  }
  const siglip = kind === 'siglip';
  // the processor config is checked before the tower is built, so a bad one leaves nothing open
  const preprocess = siglip ? siglipProcessor(parseSiglipImageConfig(pre, prePath)) : clipProcessor(parseClipImageConfig(pre, prePath));
  const tower: Tower = siglip ? await SiglipVisionModel.load(dir, { device: opts.device }) : await ClipVisionModel.load(dir, { device: opts.device });
  return {
    modelType, kind, dir, layers: tower.dims.layers, patchesPerSide: tower.dims.patchesPerSide, clsTokens: siglip ? 0 : 1, preprocess,
    run: async (pixel, taps) => {
      const out = await tower.forward(pixel, { taps: taps.map((t) => towerName(t, kind)) });
      return new Map(taps.map((t) => [t, out.taps.get(towerName(t, kind))!]));
    },
    dispose: () => tower.dispose(),
  };
}
