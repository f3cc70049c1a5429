// LLaVA-NeXT's image side in one ORT session: CLIP tower -> selected hidden state(s) without CLS -> projector
// (linear_1 -> GELU(erf) -> linear_2). Tiles run in chunks (runTiled), so a large batch never holds every
// activation of every tile at once.

import { GraphBuilder, type Value } from '../../graph/builder.js';
import type { Device } from '../../runtime/index.js';
import type { WeightSet } from '../../tensor/safetensors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { clipDims } from '../clip/config.js';
import { buildClipTower } from '../clip/graph.js';
import { hiddenStateIndex } from '../hf-config.js';
import { attentionProbNames, defaultTileBatch, expectKnownOutputs, expectTiles, runTiled } from '../vision/tile-runner.js';
import { TowerSession, type TowerBuild } from '../vision/tower-session.js';
import { PROJECTOR_TAP } from '../vlm-base.js';
import type { LlavaNextConfig } from './config.js';

export const VISION_PREFIX = 'vision_tower.vision_model.';
/**
 * Internal output, not a hook: CLIP hidden_states[0] = pre_layrnorm(vision.embed), the encoder's input. Parity checks
 * it against HF's hidden_states[0]; visionHooks leaves it out (it is one LayerNorm of vision.embed, SigLIP has no
 * counterpart, and no experiment reads it), so it never reaches the hook vocabulary or a store.
 */
export const PRE_LAYRNORM = 'vision.pre_layrnorm';

export class LlavaNextVision {
  private constructor(
    readonly cfg: LlavaNextConfig,
    private readonly session: TowerSession,
    private readonly tileBatch: number,
  ) {}

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Layers with an attention-map output (all of them when built with attention probabilities, else none). */
  get probLayers(): number {
    return this.outputNames.filter((n) => n.endsWith('.attn.probs')).length;
  }

  static async create(cfg: LlavaNextConfig, ws: WeightSet, dModel: number, opts: { device?: Device; attentionProbs?: boolean; tileBatch?: number } = {}): Promise<LlavaNextVision> {
    const build = (allOutputs: boolean) => buildVisionGraph(cfg, ws, dModel, !!opts.attentionProbs, allOutputs);
    const session = await TowerSession.create(build, [PROJECTOR_TAP], { device: opts.device });
    return new LlavaNextVision(cfg, session, opts.tileBatch ?? defaultTileBatch(opts.device));
  }

  /** pixel [tile, channels, size, size] -> the named outputs (vision.*, projector.out), each [tile, ...]. */
  async run(pixel: Tensor, fetch: readonly string[], attentionProbs = false): Promise<Map<string, Tensor>> {
    expectTiles(pixel, this.cfg.vision.num_channels, this.cfg.vision.image_size, 'pixel tiles', 'LLaVA-NeXT vision input');
    expectKnownOutputs(fetch, this.outputNames, 'LLaVA-NeXT vision output');
    const probs = attentionProbNames('vision', this.probLayers, attentionProbs, 'load the model with { attentionProbs: true } to get vision attention probabilities');
    const all = [...new Set([...fetch, ...probs])];
    return runTiled(await this.session.sessionFor(all), 'pixel_values', pixel, all, this.tileBatch);
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}

/** CLIP tower + projector; with `allOutputs` every output is a graph output, without only projector.out (see TowerSession). */
function buildVisionGraph(cfg: LlavaNextConfig, ws: WeightSet, dModel: number, attentionProbs: boolean, allOutputs: boolean): TowerBuild {
  const v = cfg.vision;
  const d = clipDims(v);
  const g = new GraphBuilder('llava_next.vision');
  const pixel = g.input('pixel_values', 'float32', ['tile', v.num_channels, v.image_size, v.image_size]);
  const t = buildClipTower(g, v, ws, pixel, { prefix: VISION_PREFIX, attentionProbs });
  const names: string[] = [];
  const out = (x: Value, name: string) => { if (allOutputs || name === PROJECTOR_TAP) g.output(x, name); names.push(name); };
  out(t.embed, 'vision.embed');
  out(t.hidden[0], PRE_LAYRNORM);
  t.hidden.slice(1).forEach((x, l) => out(x, `vision.${l}.out`));
  out(t.postNorm, 'vision.post_norm');
  t.probs.forEach((x, l) => out(x, `vision.${l}.attn.probs`));
  // "default" strategy: drop token 0 (CLS) of every selected hidden state; several layers concat on features.
  const selected = cfg.featureLayers.map((l) => g.slice(t.hidden[hiddenStateIndex(l, d.layers)], [1], [d.tokens], [1])); // [tile, patch, dVision]
  const feats = selected.length === 1 ? selected[0] : g.concat(selected, 2);
  const dIn = d.dModel * selected.length;
  const w = (name: string, shape: readonly number[]) => g.weight(ws.expect(name, shape));
  const b = (name: string, n: number) => (cfg.projectorBias ? w(name, [n]) : undefined);
  const h1 = g.linear(feats, w('multi_modal_projector.linear_1.weight', [dModel, dIn]), b('multi_modal_projector.linear_1.bias', dModel));
  const h2 = g.linear(g.gelu(h1, 'none'), w('multi_modal_projector.linear_2.weight', [dModel, dModel]), b('multi_modal_projector.linear_2.bias', dModel));
  out(h2, PROJECTOR_TAP);
  return { graph: g.build(), outputs: names };
}
