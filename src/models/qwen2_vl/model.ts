// Qwen2-VL / Qwen2.5-VL: ViT (2-D RoPE, windows for 2.5) + merger in one ORT session, merged tokens scattered at
// the <|image_pad|> tokens, then the shared Qwen2 decoder with M-RoPE ids that kvlens computes itself
// (get_rope_index). A continuation without explicit ids sits at cache length + rope_delta on all three axes
// (the decoder's nextPositions = largest id + 1). Token map: each image is a (H/28) x (W/28) grid, no newlines.
//
//   const m = await Qwen2Vl.load(dir);
//   const out = await m.forward({ inputIds, pixelValues, imageGridThw, taps: ['lm.*.attn.k'] });
//   const next = await m.continue(out.cache, [[tok]]);

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../../runtime/index.js';
import { WeightSet } from '../../tensor/safetensors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { expandHooks } from '../../taps/names.js';
import { KvlensInputError, KvlensUsageError } from '../../util/errors.js';
import { DecoderLM, type Rows } from '../lm/decoder.js';
import type { KvCache } from '../lm/cache.js';
import { idRows, isImageTap, scatterImageFeatures } from '../llava_next/model.js';
import { greedyGenerate } from '../generate.js';
import type { GenerateOptions, GenerateResult, KvlensModel, ModelDims, ModelForwardRequest, ModelForwardResult, StepOptions } from '../types.js';
import { parseQwen2VlConfig, type Qwen2VlConfig } from './config.js';
import { checkGrids, gridsFrom, ropeIndex, tokenCount, type GridThw, type RopeIndex } from './positions.js';
import { QwenVisionTower } from './vision.js';

export interface Qwen2VlLoadOptions {
  readonly device?: Device;
  readonly threads?: number;
  readonly visionAttentionProbs?: boolean;
}

export interface Qwen2VlImageFeatures {
  /** image.packed = merger output [imageToken, dModel], images in order */
  readonly packed: Tensor<'float32'>;
  /** tokens per image (t * h/2 * w/2) */
  readonly lengths: number[];
  /** vision hooks asked for: vision.embed / vision.{L}.out / vision.post_norm [patch, dVision] in pixel_values order */
  readonly taps: Map<string, Tensor>;
}

export class Qwen2Vl implements KvlensModel {
  private constructor(
    readonly dir: string,
    readonly config: Qwen2VlConfig,
    readonly lm: DecoderLM,
    private readonly vision: QwenVisionTower,
  ) {}

  static async load(dir: string, opts: Qwen2VlLoadOptions = {}): Promise<Qwen2Vl> {
    const cfgPath = join(dir, 'config.json');
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(cfgPath, 'utf8'));
    } catch (e) {
      throw new KvlensInputError(`cannot read (${(e as Error).message})`, cfgPath);
    }
    const config = parseQwen2VlConfig(raw, cfgPath);
    const ws = WeightSet.open(dir);
    const vision = await QwenVisionTower.create(config.vision, ws, { device: opts.device, attentionProbs: opts.visionAttentionProbs });
    try {
      const lm = await DecoderLM.fromWeights(ws, { config: config.text, device: opts.device, threads: opts.threads });
      return new Qwen2Vl(dir, config, lm, vision);
    } catch (e) {
      await vision.dispose();
      throw e;
    }
  }

  get family(): string {
    return this.config.variant;
  }

  get text() {
    return this.config.text;
  }

  get dims(): ModelDims {
    const t = this.config.text;
    return { lmLayers: t.numLayers, visionLayers: this.config.vision.depth, kvHeads: t.numKvHeads, headDim: t.headDim, dModel: t.hiddenSize };
  }

  get eosTokenIds(): readonly number[] {
    return this.config.text.eosTokenIds;
  }

  get visionHooks(): readonly string[] {
    return this.vision.outputNames;
  }

  grids(imageGridThw: Tensor | readonly number[]): GridThw[] {
    const grids = gridsFrom(('data' in (imageGridThw as Tensor) ? (imageGridThw as Tensor).data : imageGridThw) as BigInt64Array);
    checkGrids(grids, this.config.vision.mergeSize);
    return grids;
  }

  async imageFeatures(pixelValues: Tensor, imageGridThw: Tensor | readonly number[], hooks: readonly string[] = []): Promise<Qwen2VlImageFeatures> {
    const grids = this.grids(imageGridThw);
    const fetch = [...new Set([...hooks, 'projector.out'])];
    const out = await this.vision.run(pixelValues, grids, fetch);
    const taps = new Map<string, Tensor>();
    for (const h of hooks) taps.set(h, out.get(h)!);
    return { packed: out.get('projector.out')!, lengths: grids.map((g) => tokenCount(g, this.config.vision.mergeSize)), taps };
  }

  /** M-RoPE ids [3][batch][pos] and rope deltas of a prompt (HF get_rope_index). */
  ropeIndex(inputIds: Rows, imageGridThw: Tensor | readonly number[] = [], mask?: Rows): RopeIndex {
    return ropeIndex(inputIds, this.grids(imageGridThw), this.config, mask);
  }

  embedWithImages(inputIds: Rows, packed?: Tensor<'float32'>): Tensor<'float32'> {
    return scatterImageFeatures(this.lm.embed(inputIds), inputIds, this.config.imageTokenId, packed);
  }

  /**
   * Prefill (with images when pixelValues + imageGridThw are given) or continue a cache. Taps may name vision.*,
   * projector.out, image.packed and every lm.* hook. M-RoPE ids: req.mropePositionIds, else get_rope_index on a
   * prefill, else (continuation) cache length + rope_delta on every axis.
   */
  async forward(req: ModelForwardRequest): Promise<ModelForwardResult> {
    const names = expandHooks(req.taps ?? [], this.dims);
    const visionTaps = names.filter(isImageTap);
    const lmTaps = names.filter((n) => !isImageTap(n));
    if ((req.pixelValues === undefined) !== (req.imageGridThw === undefined)) throw new KvlensUsageError('give pixelValues and imageGridThw together');
    if (visionTaps.length && !req.pixelValues) throw new KvlensUsageError(`taps ${visionTaps.join(', ')} need pixelValues (this call has no image)`);
    const ids = idRows(req.inputIds);
    const taps = new Map<string, Tensor>();
    let packed: Tensor<'float32'> | undefined;
    let imageTokens: number[] | undefined;
    if (req.pixelValues) {
      const feats = await this.imageFeatures(req.pixelValues, req.imageGridThw!, visionTaps.filter((t) => t !== 'image.packed'));
      packed = feats.packed;
      imageTokens = feats.lengths;
      for (const [k, v] of feats.taps) taps.set(k, v);
      taps.set('image.packed', packed);
    }
    let positions = req.mropePositionIds;
    if (!positions && !req.past && !req.positionIds) {
      const mask = req.attentionMask2d && !('shape' in req.attentionMask2d) ? req.attentionMask2d : undefined;
      positions = this.ropeIndex(ids, req.imageGridThw ?? [], mask).positions;
    } else if (!positions && ids.some((r) => r.includes(this.config.imageTokenId))) {
      throw new KvlensUsageError('image tokens in a continuation (or with 1-D positionIds) need explicit mropePositionIds');
    }
    const inputsEmbeds = this.embedWithImages(ids, packed);
    const out = await this.lm.forward({
      inputsEmbeds, past: req.past, taps: lmTaps, block: req.block, denseMask: req.denseMask, layerMasks: req.layerMasks,
      attentionMask2d: req.attentionMask2d, positionIds: req.positionIds, logitsAt: req.logitsAt, returnCache: true,
      ...(positions ? { mropePositionIds: positions } : {}),
    });
    for (const [k, v] of out.taps) taps.set(k, v);
    return { taps: new Map(names.map((n) => [n, taps.get(n)!])), logits: out.logits, logitsAt: out.logitsAt, cache: out.cache!, ...(imageTokens ? { imageTokens } : {}) };
  }

  /** Text continuation on a cached prefix at cache length + rope_delta (the image is not recomputed). */
  continue(cache: KvCache, inputIds: Rows | Tensor, opts: StepOptions = {}): Promise<ModelForwardResult> {
    return this.forward({ ...opts, inputIds, past: cache });
  }

  generate(req: ModelForwardRequest, opts: GenerateOptions): Promise<GenerateResult> {
    return greedyGenerate(this, req, opts);
  }

  async dispose(): Promise<void> {
    await this.vision.dispose();
    await this.lm.dispose();
  }
}
