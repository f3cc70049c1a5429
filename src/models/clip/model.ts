// A standalone CLIP vision tower (HF CLIPVisionModel: model_type "clip_vision_model", weights "vision_model.*"; or a
// whole CLIPModel, model_type "clip", whose vision_config nests the tower), e.g. openai/clip-vit-large-patch14-336,
// the un-finetuned encoder LLaVA-NeXT's tower starts from. Outputs per tile, CLS token first:
//   clip.embed [tile, token, d] (before pre_layrnorm), clip.{L}.out (encoder layer L), clip.post_norm,
//   clip.{L}.attn.probs when built with attentionProbs.

import { join } from 'node:path';
import { GraphBuilder } from '../../graph/builder.js';
import { OrtSession, type Device } from '../../runtime/index.js';
import { WeightSet } from '../../tensor/safetensors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KvlensInputError } from '../../util/errors.js';
import { readConfigJson } from '../hf-config.js';
import { defaultTileBatch, attentionProbNames, expectKnownOutputs, expectTiles, runTiled } from '../vision/tile-runner.js';
import { clipDims, parseClipVisionConfig, type ClipDims, type ClipVisionConfig } from './config.js';
import { buildClipTower } from './graph.js';

export interface ClipLoadOptions {
  readonly device?: Device;
  readonly attentionProbs?: boolean;
  readonly tileBatch?: number;
}

export class ClipVisionModel {
  private constructor(
    readonly config: ClipVisionConfig,
    readonly dims: ClipDims,
    private readonly session: OrtSession,
    readonly hookNames: readonly string[],
    private readonly probLayers: number,
    private readonly tileBatch: number,
  ) {}

  static async load(dir: string, opts: ClipLoadOptions = {}): Promise<ClipVisionModel> {
    const cfgPath = join(dir, 'config.json');
    const raw = readConfigJson(cfgPath) as Record<string, unknown>;
    const config = parseClipVisionConfig(raw.model_type === 'clip' ? raw.vision_config : raw, cfgPath);
    const ws = WeightSet.open(dir);
    const prefix = ['vision_model.', ''].find((p) => ws.has(`${p}embeddings.patch_embedding.weight`));
    if (prefix === undefined) throw new KvlensInputError('no CLIP vision weights found (looked for vision_model.embeddings.patch_embedding.weight)', dir);
    const dims = clipDims(config, cfgPath);
    const g = new GraphBuilder('clip_vision');
    const pixel = g.input('pixel_values', 'float32', ['tile', config.num_channels, config.image_size, config.image_size]);
    const t = buildClipTower(g, config, ws, pixel, { prefix, attentionProbs: opts.attentionProbs });
    const hooks: string[] = [];
    const out = (v: Parameters<typeof g.output>[0], name: string) => { g.output(v, name); hooks.push(name); };
    out(t.embed, 'clip.embed');
    t.hidden.slice(1).forEach((x, l) => out(x, `clip.${l}.out`));
    out(t.postNorm, 'clip.post_norm');
    t.probs.forEach((x, l) => out(x, `clip.${l}.attn.probs`));
    const session = await OrtSession.create(g.build(), { device: opts.device });
    return new ClipVisionModel(config, dims, session, hooks, t.probs.length, opts.tileBatch ?? defaultTileBatch(opts.device));
  }

  /** pixelValues [tile, channels, size, size] -> the named outputs, each [tile, ...]. */
  async forward(pixelValues: Tensor, req: { taps?: readonly string[]; attentionProbs?: boolean } = {}): Promise<{ taps: Map<string, Tensor> }> {
    expectTiles(pixelValues, this.config.num_channels, this.config.image_size, 'pixel_values', 'CLIP input');
    const taps = req.taps ?? this.hookNames.filter((h) => !h.endsWith('.attn.probs'));
    expectKnownOutputs(taps, this.hookNames, 'CLIP hook');
    const probs = attentionProbNames('clip', this.probLayers, req.attentionProbs, 'load the model with { attentionProbs: true } to get attention probabilities');
    const fetch = [...new Set([...taps, ...probs])];
    return { taps: await runTiled(this.session, 'pixel_values', pixelValues, fetch, this.tileBatch) };
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
