// Qwen2-VL / Qwen2.5-VL: ViT (2-D RoPE, windows for 2.5) + merger in one ORT session, merged tokens scattered at
// the <|image_pad|> tokens, then the shared Qwen2 decoder with M-RoPE ids that kvlens computes itself
// (get_rope_index). A continuation without explicit ids sits at cache length + rope_delta on all three axes
// (the decoder's nextPositions = largest id + 1). Token map: each image is a (H/28) x (W/28) grid, no newlines.
//
//   const m = await Qwen2Vl.load(dir);
//   const out = await m.forward({ inputIds, pixelValues, imageGridThw, taps: ['lm.*.attn.k'] });
//   const next = await m.forward({ inputIds: [[tok]], past: out.cache });

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../../runtime/index.js';
import { WeightSet } from '../../tensor/safetensors.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { HookDims } from '../../taps/names.js';
import { KvlensInputError, KvlensUsageError } from '../../util/errors.js';
import { DecoderLM, type ForwardRequest, type ForwardResult, type Rows } from '../lm/decoder.js';
import { scatterImageFeatures } from '../llava_next/model.js';
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

export type Qwen2VlForward = Omit<ForwardRequest, 'inputIds' | 'inputsEmbeds' | 'mropePositionIds'> & {
  readonly inputIds: Rows;
  /** [patch, C*T*P*P] flattened patches of all images (Qwen2VLImageProcessor output) */
  readonly pixelValues?: Tensor;
  /** [nImages, 3] (t, h, w) in patches */
  readonly imageGridThw?: Tensor | readonly number[];
  /** Explicit M-RoPE ids [3][batch][pos]; default: computed by get_rope_index (prefill) or cache + delta (continuation). */
  readonly mropePositionIds?: readonly Rows[];
};

export class Qwen2Vl {
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

  get text() {
    return this.config.text;
  }

  get dims(): HookDims {
    return { lmLayers: this.config.text.numLayers, visionLayers: this.config.vision.depth };
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
   * Prefill (with images when pixelValues are given) or continue a cache. Taps may name vision.*, projector.out,
   * image.packed and every lm.* hook. Returns the decoder's result plus the vision taps and the rope deltas.
   */
  async forward(req: Qwen2VlForward): Promise<ForwardResult & { readonly imageTaps: Map<string, Tensor>; readonly ropeDeltas?: number[] }> {
    const taps = req.taps ?? [];
    const visionTaps = taps.filter((t) => /^(vision\.|projector\.out$|image\.packed$)/.test(t));
    const lmTaps = taps.filter((t) => !visionTaps.includes(t));
    const imageTaps = new Map<string, Tensor>();
    let packed: Tensor<'float32'> | undefined;
    if (req.pixelValues) {
      if (!req.imageGridThw) throw new KvlensUsageError('forward: pixelValues need imageGridThw');
      const feats = await this.imageFeatures(req.pixelValues, req.imageGridThw, visionTaps.filter((t) => t !== 'image.packed'));
      packed = feats.packed;
      for (const [k, v] of feats.taps) imageTaps.set(k, v);
      if (visionTaps.includes('image.packed')) imageTaps.set('image.packed', packed);
    } else if (visionTaps.length) {
      throw new KvlensUsageError(`taps ${visionTaps.join(', ')} need pixelValues`);
    }
    const { pixelValues: _p, imageGridThw, inputIds, mropePositionIds, ...rest } = req;
    let positions = mropePositionIds;
    let ropeDeltas: number[] | undefined;
    if (!positions && !req.past && !req.positionIds) {
      const mask = req.attentionMask2d && !('shape' in req.attentionMask2d) ? req.attentionMask2d : undefined;
      const ri = this.ropeIndex(inputIds, imageGridThw ?? [], mask);
      positions = ri.positions;
      ropeDeltas = ri.ropeDeltas;
    } else if (!positions && req.past && inputIds.some((r) => r.includes(this.config.imageTokenId))) {
      throw new KvlensUsageError('continuing a cache with image tokens needs explicit mropePositionIds');
    }
    const inputsEmbeds = this.embedWithImages(inputIds, packed);
    const out = await this.lm.forward({ ...rest, inputsEmbeds, taps: lmTaps, ...(positions ? { mropePositionIds: positions } : {}) });
    return { ...out, imageTaps, ...(ropeDeltas ? { ropeDeltas } : {}) };
  }

  async dispose(): Promise<void> {
    await this.vision.dispose();
    await this.lm.dispose();
  }
}
