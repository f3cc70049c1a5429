// A standalone SigLIP vision model (HF SiglipVisionModel: weights "vision_model.*"), e.g. the un-finetuned
// baseline tower the paper compares LLaVA's tower against. Its taps use the "siglip." names of
// src/taps/names.ts. Tiles are run in chunks so a large batch never materialises every activation at once.

import { join } from 'node:path';
import { GraphBuilder } from '../../graph/builder.js';
import { OrtSession, type Device } from '../../runtime/index.js';
import { WeightSet } from '../../tensor/safetensors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KvlensInputError, KvlensUsageError } from '../../util/errors.js';
import { readConfigJson } from '../hf-config.js';
import { defaultTileBatch, attentionProbNames, expectKnownOutputs, expectTiles, runTiled } from '../vision/tile-runner.js';
import { parseSiglipVisionConfig, siglipDims, type SiglipDims, type SiglipVisionConfig } from './config.js';
import { buildPoolingHead, buildSiglipTower } from './graph.js';

export interface SiglipLoadOptions {
  readonly device?: Device;
  /** Also build the attention-probability outputs (explicit MatMul/Softmax attention). */
  readonly attentionProbs?: boolean;
  /** Tiles per ORT call (default 16). */
  readonly tileBatch?: number;
}

export interface SiglipOutputs {
  /** hook name -> [tile, token, dVision]; "siglip.embed", "siglip.{L}.out", "siglip.post_norm" as asked */
  readonly taps: Map<string, Tensor>;
  /** [tile, dVision] attention-pooled output (when the model has the head and it was asked for) */
  readonly pooled?: Tensor;
  /** per layer [tile, head, token, token] (when loaded with attentionProbs) */
  readonly attentionProbs?: Tensor[];
}

/** Find the SigLIP weight prefix in a checkpoint (standalone or inside a multimodal model). */
export function siglipPrefix(ws: WeightSet, candidates: readonly string[]): string {
  for (const p of candidates) if (ws.has(`${p}embeddings.patch_embedding.weight`)) return p;
  throw new KvlensInputError(`no SigLIP weights found (looked for ${candidates.map((p) => `${p}embeddings.patch_embedding.weight`).join(', ')})`, ws.dir);
}

export class SiglipVisionModel {
  private constructor(
    readonly config: SiglipVisionConfig,
    readonly dims: SiglipDims,
    private readonly session: OrtSession,
    private readonly outputs: { taps: string[]; pooled: boolean; probs: number },
    private readonly tileBatch: number,
  ) {}

  static async load(dir: string, opts: SiglipLoadOptions = {}): Promise<SiglipVisionModel> {
    const cfgPath = join(dir, 'config.json');
    const raw = readConfigJson(cfgPath);
    // A full SiglipModel config nests the tower under vision_config.
    const obj = raw as Record<string, unknown>;
    const visionRaw = obj.model_type === 'siglip' ? obj.vision_config : raw;
    const config = parseSiglipVisionConfig(visionRaw, cfgPath);
    const ws = WeightSet.open(dir);
    return SiglipVisionModel.fromWeights(config, ws, siglipPrefix(ws, ['vision_model.', '']), opts);
  }

  static async fromWeights(config: SiglipVisionConfig, ws: WeightSet, prefix: string, opts: SiglipLoadOptions = {}): Promise<SiglipVisionModel> {
    const dims = siglipDims(config);
    const g = new GraphBuilder('siglip_vision');
    const pixel = g.input('pixel_values', 'float32', ['tile', config.num_channels, config.image_size, config.image_size]);
    const v = buildSiglipTower(g, config, ws, pixel, { prefix, attentionProbs: opts.attentionProbs });
    const taps = ['siglip.embed'];
    g.output(v.embed, 'siglip.embed');
    v.layers.forEach((x, l) => { taps.push(`siglip.${l}.out`); g.output(x, `siglip.${l}.out`); });
    taps.push('siglip.post_norm');
    g.output(v.postNorm, 'siglip.post_norm');
    v.probs.forEach((x, l) => g.output(x, `siglip.${l}.attn.probs`));
    const pooled = config.vision_use_head && ws.has(`${prefix}head.probe`);
    if (pooled) g.output(buildPoolingHead(g, config, ws, v.postNorm, prefix), 'siglip.pooled');
    const session = await OrtSession.create(g.build(), { device: opts.device });
    return new SiglipVisionModel(config, dims, session, { taps, pooled, probs: v.probs.length }, opts.tileBatch ?? defaultTileBatch(opts.device));
  }

  get hookNames(): readonly string[] {
    return this.outputs.taps;
  }

  /**
   * pixelValues [tile, channels, size, size] float32. `taps` are hook names (default: all); `pooled` and
   * `attentionProbs` ask for the head output and the attention maps.
   */
  async forward(pixelValues: Tensor, req: { taps?: readonly string[]; pooled?: boolean; attentionProbs?: boolean } = {}): Promise<SiglipOutputs> {
    expectTiles(pixelValues, this.config.num_channels, this.config.image_size, 'pixel_values', 'SigLIP input');
    const taps = req.taps ?? this.outputs.taps;
    expectKnownOutputs(taps, this.outputs.taps, 'SigLIP hook');
    if (req.pooled && !this.outputs.pooled) throw new KvlensUsageError('this SigLIP model has no attention-pooling head (vision_use_head is false or head weights are missing)');
    const probNames = attentionProbNames('siglip', this.outputs.probs, req.attentionProbs, 'load the model with { attentionProbs: true } to get attention probabilities');
    const fetch = [...taps, ...(req.pooled ? ['siglip.pooled'] : []), ...probNames];
    const parts = await runTiled(this.session, 'pixel_values', pixelValues, fetch, this.tileBatch);
    return {
      taps: new Map(taps.map((t) => [t, parts.get(t)!])),
      pooled: req.pooled ? parts.get('siglip.pooled') : undefined,
      attentionProbs: req.attentionProbs ? probNames.map((n) => parts.get(n)!) : undefined,
    };
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
