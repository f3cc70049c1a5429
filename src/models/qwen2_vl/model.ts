// Qwen2-VL / Qwen2.5-VL: ViT (2-D RoPE, windows for 2.5) + merger in one ORT session, merged tokens scattered at
// the <|image_pad|> tokens, then the shared Qwen2 decoder with M-RoPE ids that kvlens computes itself
// (get_rope_index). A continuation without explicit ids sits at cache length + rope_delta on all three axes
// (the decoder's nextPositions = largest id + 1). Token map: each image is a (H/28) x (W/28) grid, no newlines.
//
//   const m = await Qwen2Vl.load(dir);
//   const out = await m.forward({ inputIds, pixelValues, imageGridThw, taps: ['lm.*.attn.k'] });
//   const next = await m.continue(out.cache, [[tok]]);

import { join } from 'node:path';
import type { Device } from '../../runtime/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KvlensUsageError } from '../../util/errors.js';
import type { DecoderLM, ForwardRequest, Rows } from '../lm/decoder.js';
import type { DecoderConfig } from '../lm/config.js';
import { readConfigJson } from '../hf-config.js';
import { openModelWeights } from '../weight-names.js';
import { loadDecoderBeside, PROJECTOR_TAP, VisionLanguageModel, type ImagePathOutput } from '../vlm-base.js';
import type { PreparedInputs } from '../../preprocess/load.js';
import type { ViewTokens } from '../../preprocess/token-map.js';
import { concatRows } from '../vision/pixel-batch.js';
import { patchGridPositions, QWEN2_5_VL_SPEC, QWEN2_VL_SPEC } from './spec.js';
import type { FamilySpec, ModelForwardRequest } from '../types.js';
import { parseQwen2VlConfig, type Qwen2VlConfig } from './config.js';
import { checkGrids, gridsFrom, patchCount, ropeIndex, tokenCount, type GridThw, type RopeIndex } from './positions.js';
import { QwenVisionTower } from './vision.js';

export interface Qwen2VlLoadOptions {
  readonly device?: Device;
  readonly threads?: number;
  readonly visionAttentionProbs?: boolean;
}

/**
 * packed = merger output [imageToken, dModel], images in order; lengths = t * h/2 * w/2 per image; taps = the
 * vision hooks asked for: vision.embed / vision.{L}.out / vision.post_norm [patch, dVision] in pixel_values order.
 */
export type Qwen2VlImageFeatures = ImagePathOutput;

export class Qwen2Vl extends VisionLanguageModel {
  protected readonly geometryField = 'imageGridThw';

  private constructor(
    readonly dir: string,
    readonly config: Qwen2VlConfig,
    readonly lm: DecoderLM,
    protected readonly vision: QwenVisionTower,
  ) {
    super();
  }

  static async load(dir: string, opts: Qwen2VlLoadOptions = {}): Promise<Qwen2Vl> {
    const cfgPath = join(dir, 'config.json');
    const config = parseQwen2VlConfig(readConfigJson(cfgPath), cfgPath);
    const ws = openModelWeights(dir, config.variant);
    const vision = await QwenVisionTower.create(config.vision, ws, { device: opts.device, attentionProbs: opts.visionAttentionProbs });
    const lm = await loadDecoderBeside(vision, ws, config.text, opts);
    return new Qwen2Vl(dir, config, lm, vision);
  }

  get family(): string {
    return this.config.variant;
  }

  get spec(): FamilySpec {
    return this.config.variant === 'qwen2_5_vl' ? QWEN2_5_VL_SPEC : QWEN2_VL_SPEC;
  }

  get text(): DecoderConfig {
    return this.config.text;
  }

  protected get visionLayers(): number {
    return this.config.vision.depth;
  }

  get imageTokenId(): number {
    return this.config.imageTokenId;
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
    const fetch = [...new Set([...hooks, PROJECTOR_TAP])];
    const out = await this.vision.run(pixelValues, grids, fetch);
    const taps = new Map<string, Tensor>();
    for (const h of hooks) taps.set(h, out.get(h)!);
    return { packed: out.get(PROJECTOR_TAP)! as Tensor<'float32'>, lengths: grids.map((g) => tokenCount(g, this.config.vision.mergeSize)), units: grids.map(patchCount), taps };
  }

  protected runImagePath(pixelValues: Tensor, imageGridThw: Tensor | readonly number[], hooks: readonly string[]): Promise<ImagePathOutput> {
    return this.imageFeatures(pixelValues, imageGridThw, hooks);
  }

  protected batchPixels(prompts: readonly PreparedInputs[]): { pixelValues: Tensor; geometry: number[] } {
    return { pixelValues: concatRows(prompts.map((p) => p.pixelValues!)), geometry: prompts.flatMap((p) => this.geometryOf(p)) };
  }

  protected geometryOf(p: PreparedInputs): number[] {
    if (!p.imageGridThw) throw new KvlensUsageError(`${this.family}: prepared inputs without imageGridThw`);
    return Array.from(p.imageGridThw.data, Number);
  }

  /** Image `image`'s patch grid (h x w patches, t = 1): cell -> its row among the image's vision-tap rows. */
  protected override towerGrid(p: PreparedInputs, image: number): ViewTokens | undefined {
    const g = this.grids(p.imageGridThw ?? [])[image];
    if (!g) return undefined;
    if (g.t !== 1) throw new KvlensUsageError(`${this.family}: image ${image} has ${g.t} temporal patches; the patch grid view is defined for still images (t = 1)`);
    return { rows: g.h, cols: g.w, positions: patchGridPositions(g.h, g.w, this.config.vision.mergeSize) };
  }

  /** M-RoPE ids [3][batch][pos] and rope deltas of a prompt (HF get_rope_index). */
  ropeIndex(inputIds: Rows, imageGridThw: Tensor | readonly number[] = [], mask?: Rows): RopeIndex {
    return ropeIndex(inputIds, this.grids(imageGridThw), this.config, mask);
  }

  /**
   * M-RoPE ids: req.mropePositionIds, else get_rope_index on a prefill, else (continuation) none, so the decoder
   * continues at cache length + rope_delta on every axis.
   */
  protected override decoderExtras(req: ModelForwardRequest, ids: Rows): Partial<ForwardRequest> {
    let positions = req.mropePositionIds;
    if (!positions && !req.past && !req.positionIds) {
      const mask = req.attentionMask2d && !('shape' in req.attentionMask2d) ? req.attentionMask2d : undefined;
      positions = this.ropeIndex(ids, req.imageGridThw ?? [], mask).positions;
    } else if (!positions && ids.some((r) => r.includes(this.config.imageTokenId))) {
      throw new KvlensUsageError('image tokens in a continuation (or with 1-D positionIds) need explicit mropePositionIds');
    }
    return positions ? { mropePositionIds: positions } : {};
  }
}
