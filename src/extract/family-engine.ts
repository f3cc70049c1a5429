// Extraction for every model family behind the shared interfaces (loadModel -> KvlensModel, loadProcessor ->
// KvlensProcessor): one image per forward, its language-model taps and packed image features stored at the token
// map's grid positions. LLaVA-OneVision keeps its batched engine (engine.ts); this one serves LLaVA-NeXT and
// Qwen2-VL / Qwen2.5-VL (and any family loadModel and loadProcessor both know).
//
// Views: LLaVA-NeXT has "base" (the squashed tile) and "highres" (unpadded anyres grid, newlines dropped) like
// LLaVA-OneVision. Qwen2-VL / Qwen2.5-VL have ONE grid, the merged (H/28) x (W/28) tokens of the smart-resized image,
// stored as view "highres" (the image at native resolution; there is no thumbnail "base" view). Views a family lacks
// are left out of the store; asking only for views it lacks is an error.
// Vision-tower taps (vision.*, projector.out) and the SigLIP baseline are stored for LLaVA-OneVision only: the towers
// of the other families have no per-tile square grid the store's tile layout describes.

import { join } from 'node:path';
import { loadModel, readModelType } from '../models/index.js';
import type { KvlensModel } from '../models/types.js';
import { loadProcessor, type KvlensProcessor, type PreparedInputs } from '../preprocess/load.js';
import { resizeRgb } from '../preprocess/pil-resize.js';
import type { RgbImage } from '../preprocess/image.js';
import { renderPrompt } from '../tokenizer/prompt.js';
import type { TapTensor, ViewTokens } from '../store/gather.js';
import type { Tensor } from '../tensor/tensor.js';
import { KvlensUsageError } from '../util/errors.js';
import { tapPatterns, type ExtractConfig } from './config.js';
import { LlavaExtractor, planTaps, sha256File, viewTokens, withHeads, type PreparedImage, type TapPlan } from './engine.js';

/** Which store views a family's token map has. */
export function familyViews(family: string): readonly string[] {
  return family === 'qwen2_vl' || family === 'qwen2_5_vl' ? ['highres'] : ['base', 'highres'];
}

/** What extractFeatures drives: LlavaExtractor (LLaVA-OneVision, batched) or FamilyExtractor. */
export interface Extractor {
  readonly plan: TapPlan;
  readonly views: string[];
  promptTemplate(): string;
  processorIdentity(): Record<string, unknown>;
  prepare(rgb: RgbImage, prefix?: string): Promise<PreparedImage>;
  run(batch: readonly PreparedImage[]): Promise<Array<Map<string, TapTensor>>>;
  dispose(): Promise<void>;
}

/** The extractor for the checkpoint's model_type. */
export async function openExtractor(cfg: ExtractConfig): Promise<Extractor> {
  return readModelType(cfg.model) === 'llava_onevision' ? LlavaExtractor.open(cfg) : FamilyExtractor.open(cfg);
}

/** A prepared image of any family: the processor's model inputs ride along with the store fields. */
export interface FamilyPreparedImage extends PreparedImage {
  readonly inputs: PreparedInputs;
}

export class FamilyExtractor implements Extractor {
  private constructor(
    private readonly cfg: ExtractConfig,
    private readonly model: KvlensModel,
    private readonly processor: KvlensProcessor,
    readonly plan: TapPlan,
    readonly views: string[],
  ) {}

  static async open(cfg: ExtractConfig): Promise<FamilyExtractor> {
    if (cfg.siglip) throw new KvlensUsageError('the SigLIP baseline (--siglip) is extracted with LLaVA-OneVision models only');
    const model = await loadModel(cfg.model, { device: cfg.device });
    try {
      const processor = await loadProcessor(cfg.model);
      const plan = planTaps(tapPatterns(cfg), model.dims);
      if (plan.vision.length || plan.siglip.length) {
        throw new KvlensUsageError(`taps ${[...plan.vision, ...plan.siglip].join(', ')}: vision-tower taps are extracted for LLaVA-OneVision only (${model.family} has lm.* and image.packed)`);
      }
      const have = familyViews(model.family);
      const views = cfg.views.filter((v) => have.includes(v));
      if (!views.length) throw new KvlensUsageError(`views ${cfg.views.join(', ')}: ${model.family} stores view(s) ${have.join(', ')}`);
      return new FamilyExtractor(cfg, model, processor, plan, views);
    } catch (e) {
      await model.dispose();
      throw e;
    }
  }

  promptTemplate(): string {
    return renderPrompt(this.promptInput(), 1, this.processor.template, this.processor.tokenizer);
  }

  processorIdentity(): Record<string, unknown> {
    return {
      family: this.model.family,
      imageProcessorSha256: sha256File(this.processor.sources.imageProcessorFile ?? join(this.cfg.model, 'preprocessor_config.json')),
      chatTemplateSource: this.processor.template.source.startsWith('builtin:') ? this.processor.template.source : 'checkpoint',
      resolution: this.cfg.resolution ?? null,
      batchSize: this.cfg.batchSize,
      siglip: null,
    };
  }

  /** `prefix`: this image's own prefix (per-image prefixes), replacing the config's. */
  async prepare(rgb: RgbImage, prefix?: string): Promise<FamilyPreparedImage> {
    const img = this.cfg.resolution ? resizeRgb(rgb, this.cfg.resolution, this.cfg.resolution, 'bicubic') : rgb;
    const inputs = await this.processor.prepare({ images: [img], ...this.promptInput(prefix) });
    const run = inputs.tokenMap.runs[0];
    const views: Record<string, ViewTokens> = viewTokens(inputs.tokenMap.entries, this.views);
    return {
      ids: Array.from(inputs.inputIds.data, Number),
      pixelValues: inputs.pixelValues!,
      size: { height: img.height, width: img.width },
      originalSize: { width: rgb.width, height: rgb.height },
      tiles: inputs.pixelValues!.shape.length === 5 ? inputs.pixelValues!.shape[1] : 1,
      imageStart: run.start,
      views,
      inputs,
    };
  }

  /** One forward per image (prompts differ in length between images; no padding, so no padding effects). */
  async run(batch: readonly PreparedImage[]): Promise<Array<Map<string, TapTensor>>> {
    const results: Array<Map<string, TapTensor>> = [];
    for (const b of batch) {
      const { inputs } = b as FamilyPreparedImage;
      const taps = [...this.plan.lm, ...(this.plan.packed ? ['image.packed'] : [])];
      const out = await this.model.forward({
        inputIds: inputs.inputIds, pixelValues: inputs.pixelValues, taps, logitsAt: 'none',
        ...(inputs.imageSizes ? { imageSizes: inputs.imageSizes } : {}), ...(inputs.imageGridThw ? { imageGridThw: inputs.imageGridThw } : {}),
      });
      const r = new Map<string, TapTensor>();
      const headDim = this.model.dims.headDim;
      for (const [name, t] of out.taps) {
        const data = (t as Tensor<'float32'>).data as Float32Array;
        if (name === 'image.packed') { r.set(name, { shape: [...t.shape], data, origin: b.imageStart }); continue; }
        // [1, ...] rows; projections [1, pos, heads * dHead] carry their head count
        const width = t.shape[t.shape.length - 1];
        r.set(name, withHeads(name, { shape: [...t.shape], data }, { numHeads: width / headDim, numKvHeads: width / headDim }));
      }
      results.push(r);
    }
    return results;
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }

  private promptInput(prefix: string = this.cfg.prefix) {
    return { question: this.cfg.question, prefix, ...(this.cfg.systemPrompt !== undefined ? { systemPrompt: this.cfg.systemPrompt } : {}) };
  }
}
