// A decoder-only language model (standalone Qwen2 today) behind the shared model interface: token ids in,
// language-model taps, logits and cache out. It has no image path, so image inputs and vision taps are errors.

import { KvlensUsageError } from '../util/errors.js';
import { expandHooks } from '../taps/names.js';
import type { Tensor } from '../tensor/tensor.js';
import type { DecoderLM } from './lm/index.js';
import { greedyGenerate } from './generate.js';
import { decoderStep, modelDims } from './vlm-base.js';
import type { GenerateOptions, GenerateResult, KvCache, KvlensModel, ModelDims, ModelForwardRequest, ModelForwardResult, Rows, StepOptions } from './types.js';

export class TextOnlyModel implements KvlensModel {
  constructor(readonly family: string, readonly lm: DecoderLM) {}

  get dims(): ModelDims {
    return modelDims(this.lm.config, 0);
  }

  get eosTokenIds(): readonly number[] {
    return this.lm.config.eosTokenIds;
  }

  async forward(req: ModelForwardRequest): Promise<ModelForwardResult> {
    if (req.pixelValues !== undefined || req.imageSizes !== undefined) {
      throw new KvlensUsageError(`a ${this.family} model is text-only: pixelValues / imageSizes cannot be given`);
    }
    const taps = expandHooks(req.taps ?? [], this.dims); // unknown names and vision hooks fail before running
    const out = await this.lm.forward({ ...decoderStep(req, taps), inputIds: req.inputIds });
    return { taps: out.taps as Map<string, Tensor>, logits: out.logits, logitsAt: out.logitsAt, cache: out.cache! };
  }

  continue(cache: KvCache, inputIds: Rows | Tensor, opts: StepOptions = {}): Promise<ModelForwardResult> {
    return this.forward({ ...opts, inputIds, past: cache });
  }

  generate(req: ModelForwardRequest, opts: GenerateOptions): Promise<GenerateResult> {
    return greedyGenerate(this, req, opts);
  }

  dispose(): Promise<void> {
    return this.lm.dispose();
  }
}
