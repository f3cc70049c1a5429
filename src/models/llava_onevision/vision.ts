// LLaVA-OneVision's image path up to the projector, as one ORT session: SigLIP tower over tiles, the feature
// layer(s) chosen by vision_feature_layer (HF hidden_states[i]: 0 = embeddings, i = layer i-1 output, before
// post_layernorm), select strategy, then multi_modal_projector linear_1 -> GELU(erf) -> linear_2.

import { GraphBuilder, type Value } from '../../graph/builder.js';
import type { Device } from '../../runtime/index.js';
import type { WeightSet } from '../../tensor/safetensors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KvlensInputError } from '../../util/errors.js';
import { siglipDims, type SiglipDims } from '../siglip/config.js';
import { buildSiglipTower } from '../siglip/graph.js';
import { defaultTileBatch, expectKnownOutputs, runTiled } from '../vision/tile-runner.js';
import { TowerSession, type TowerBuild } from '../vision/tower-session.js';
import { hiddenStateIndex } from '../hf-config.js';
import { PROJECTOR_TAP } from '../vlm-base.js';
import type { LlavaOnevisionConfig } from './config.js';

export interface VisionPrefixes {
  /** e.g. "vision_tower.vision_model." */
  readonly tower: string;
  /** e.g. "multi_modal_projector." */
  readonly projector: string;
}

export class LlavaVisionPath {
  private constructor(
    readonly dims: SiglipDims,
    readonly tokensPerTile: number,
    private readonly session: TowerSession,
    private readonly tileBatch: number,
  ) {}

  get hookNames(): readonly string[] {
    return this.session.outputNames;
  }

  static async create(cfg: LlavaOnevisionConfig, ws: WeightSet, prefixes: VisionPrefixes, dText: number, opts: { device?: Device; tileBatch?: number; attentionProbs?: boolean } = {}): Promise<LlavaVisionPath> {
    const dims = siglipDims(cfg.vision, 'config.json (vision_config)');
    const build = (allOutputs: boolean) => buildVisionGraph(cfg, ws, prefixes, dText, dims, allOutputs, !!opts.attentionProbs);
    const session = await TowerSession.create(build, [PROJECTOR_TAP], { device: opts.device });
    const tokens = cfg.selectStrategy === 'default' ? dims.tokens - 1 : dims.tokens;
    return new LlavaVisionPath(dims, tokens, session, opts.tileBatch ?? defaultTileBatch(opts.device));
  }

  /** pixel [tile, C, S, S] -> the requested hooks (projector.out is always computed). */
  async run(pixel: Tensor, hooks: readonly string[]): Promise<Map<string, Tensor>> {
    expectKnownOutputs(hooks, this.hookNames, 'vision hook');
    if (pixel.shape.length !== 4) throw new KvlensInputError(`expected [tile, channels, size, size], got [${pixel.shape.join(', ')}]`, 'pixel_values');
    const fetch = [...new Set([...hooks, PROJECTOR_TAP])];
    return runTiled(await this.session.sessionFor(fetch), 'pixel_values', pixel, fetch, this.tileBatch);
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}

/**
 * The tower + projector graph. With `allOutputs` every hook is a graph output (vision.embed, vision.{L}.out,
 * vision.post_norm, vision.{L}.attn.probs when built with attention probabilities); without, only projector.out
 * (see TowerSession for why the difference matters).
 */
function buildVisionGraph(cfg: LlavaOnevisionConfig, ws: WeightSet, prefixes: VisionPrefixes, dText: number, dims: SiglipDims, allOutputs: boolean, attentionProbs: boolean): TowerBuild {
  const v = cfg.vision;
  const g = new GraphBuilder('llava_onevision_vision');
  const pixel = g.input('pixel_values', 'float32', ['tile', v.num_channels, v.image_size, v.image_size]);
  const tower = buildSiglipTower(g, v, ws, pixel, { prefix: prefixes.tower, attentionProbs });
  const hooks: string[] = [];
  const out = (x: Value, name: string) => { hooks.push(name); if (allOutputs) g.output(x, name); };
  out(tower.embed, 'vision.embed');
  tower.layers.forEach((x, l) => out(x, `vision.${l}.out`));
  out(tower.postNorm, 'vision.post_norm');
  tower.probs.forEach((x, l) => out(x, `vision.${l}.attn.probs`));

  const hidden = [tower.embed, ...tower.layers];
  const picked: Value[] = cfg.featureLayers.map((l) => hidden[hiddenStateIndex(l, dims.layers)]);
  let feats = picked.length === 1 ? picked[0] : g.concat(picked, -1); // [tile, token, dVision * nLayers]
  if (cfg.selectStrategy === 'default') {
    // transformers drops token 0 (CLIP's CLS). SigLIP has no CLS, so this drops a real patch, as HF does.
    feats = g.slice(feats, [1], [dims.tokens], [1]);
  }
  const dIn = dims.dModel * picked.length;
  const pw = (n: string, shape: readonly number[]) => g.weight(ws.expect(prefixes.projector + n, shape));
  const b1 = cfg.projectorBias ? pw('linear_1.bias', [dText]) : undefined;
  const b2 = cfg.projectorBias ? pw('linear_2.bias', [dText]) : undefined;
  const h1 = g.gelu(g.linear(feats, pw('linear_1.weight', [dText, dIn]), b1), 'none');
  const proj = g.linear(h1, pw('linear_2.weight', [dText, dText]), b2); // [tile, token, dModel]
  hooks.push(PROJECTOR_TAP);
  g.output(proj, PROJECTOR_TAP);
  return { graph: g.build(), outputs: hooks };
}
