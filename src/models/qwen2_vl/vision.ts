// The Qwen2-VL / Qwen2.5-VL vision tower + patch merger as one ORT session over all patches of a prompt.
//
// Inputs (all in pixel_values order; computed in JS by positions.ts):
//   pixel_values [patch, C*T*P*P]; cos, sin [patch, dHead] (2-D rotary, rotate-half layout);
//   image_group [patch] int64 (full attention stays inside an image), window_group [patch] int64 (Qwen2.5-VL
//   windowed blocks attend inside a window).
// transformers permutes patches into window order before block 0 and back after the merger; attention inside a
// group is permutation-equivariant, so kvlens keeps pixel_values order and expresses windows as block masks.
// The merger takes groups of merge^2 consecutive patches, which are whole merged units in either order.

import { F32_MIN, GraphBuilder, type Value } from '../../graph/builder.js';
import type { Device } from '../../runtime/index.js';
import type { WeightSet } from '../../tensor/safetensors.js';
import { tensor, type Tensor } from '../../tensor/tensor.js';
import { KvlensInputError } from '../../util/errors.js';
import { attentionProbNames, expectKnownOutputs } from '../vision/tile-runner.js';
import { TowerSession, type TowerBuild } from '../vision/tower-session.js';
import { PROJECTOR_TAP } from '../vlm-base.js';
import { activation } from '../siglip/graph.js';
import type { QwenVisionSpec } from './config.js';
import { imageGroups, visionRotary, windowGroups, type GridThw, patchCount } from './positions.js';

export const VISUAL_PREFIX = 'visual.';

/** The tower's MLP activation: SiLU (Qwen2.5-VL) or one of the GELU family (Qwen2-VL: quick_gelu). */
function act(g: GraphBuilder, x: Value, name: QwenVisionSpec['act']): Value {
  return name === 'silu' ? g.silu(x) : activation(g, x, name);
}

function rotateHalfRope(g: GraphBuilder, x: Value, cos: Value, sin: Value, dh: number): Value {
  const [x1, x2] = g.split(x, [dh / 2, dh / 2], 3);
  return g.add(g.mul(x, cos), g.mul(g.concat([g.neg(x2), x1], 3), sin));
}

/** Additive mask [1, 1, patch, patch]: 0 where both patches share a group, F32_MIN elsewhere. */
function groupMask(g: GraphBuilder, groups: Value): Value {
  const same = g.op('Equal', [g.unsqueeze(groups, [1]), g.unsqueeze(groups, [0])]); // [patch, patch]
  return g.unsqueeze(g.where(same, g.scalar(0, 'keep'), g.scalar(F32_MIN, 'drop')), [0, 1]);
}

/** The tower + merger; with `allOutputs` every hook is a graph output, without only projector.out (see TowerSession). */
function buildVisionGraph(s: QwenVisionSpec, ws: WeightSet, attentionProbs: boolean, allOutputs: boolean): TowerBuild {
  const g = new GraphBuilder(`${s.variant}.vision`);
  const p = VISUAL_PREFIX;
  const D = s.dim;
  const dh = s.headDim;
  const w = (name: string, shape: readonly number[]) => g.weight(ws.expect(p + name, shape));
  const pixel = g.input('pixel_values', 'float32', ['patch', s.patchDim]);
  const cos = g.input('cos', 'float32', ['patch', dh]);
  const sin = g.input('sin', 'float32', ['patch', dh]);
  const fullMask = groupMask(g, g.input('image_group', 'int64', ['patch']));
  const windowMask = s.windowUnits ? groupMask(g, g.input('window_group', 'int64', ['patch'])) : fullMask;
  const outputs: string[] = [];
  const out = (v: Value, name: string) => { if (allOutputs || name === PROJECTOR_TAP) g.output(v, name); outputs.push(name); };

  // Conv3d with kernel = stride = (T, P, P) on one patch is a dot product with the flattened kernel.
  const conv = w('patch_embed.proj.weight', [D, s.inChannels, s.temporalPatchSize, s.patchSize, s.patchSize]);
  let h = g.matmul(pixel, g.transpose(g.reshape(conv, [D, s.patchDim]), [1, 0])); // [patch, D]
  out(h, 'vision.embed');

  const norm = (x: Value, name: string) => (s.norm === 'rms'
    ? g.rmsNorm(x, w(`${name}.weight`, [D]), 1e-6)
    : g.layerNorm(x, w(`${name}.weight`, [D]), w(`${name}.bias`, [D]), 1e-6));
  const lin = (x: Value, name: string, o: number, i: number) => g.linear(x, w(`${name}.weight`, [o, i]), w(`${name}.bias`, [o]));
  for (let l = 0; l < s.depth; l++) {
    const bp = `blocks.${l}.`;
    const qkv = lin(norm(h, `${bp}norm1`), `${bp}attn.qkv`, 3 * D, D); // [patch, 3D]
    const heads = g.transpose(g.reshape(qkv, [-1, 3, s.heads, dh]), [1, 2, 0, 3]); // [3, head, patch, dHead]
    const [q, k, v] = g.split(heads, [1, 1, 1], 0); // each [1, head, patch, dHead]
    const qr = rotateHalfRope(g, q, cos, sin, dh);
    const kr = rotateHalfRope(g, k, cos, sin, dh);
    const mask = s.windowUnits && !s.fullAttBlocks.includes(l) ? windowMask : fullMask;
    let ctx: Value;
    if (attentionProbs) {
      const r = g.explicitAttention(qr, kr, v, mask, 1 / Math.sqrt(dh), { q: s.heads, kv: s.heads, dHead: dh });
      out(r.probs, `vision.${l}.attn.probs`);
      ctx = r.out;
    } else {
      ctx = g.attention(qr, kr, v, mask, 1 / Math.sqrt(dh));
    }
    const merged = g.reshape(g.transpose(ctx, [0, 2, 1, 3]), [-1, D]); // [patch, D]
    h = g.add(h, lin(merged, `${bp}attn.proj`, D, D));
    const x2 = norm(h, `${bp}norm2`);
    const I = s.intermediate;
    const mlp = s.mlp === 'gated'
      ? lin(g.mul(act(g, lin(x2, `${bp}mlp.gate_proj`, I, D), s.act), lin(x2, `${bp}mlp.up_proj`, I, D)), `${bp}mlp.down_proj`, D, I)
      : lin(act(g, lin(x2, `${bp}mlp.fc1`, I, D), s.act), `${bp}mlp.fc2`, D, I);
    h = g.add(h, mlp);
    out(h, `vision.${l}.out`);
  }
  // Merger: ln_q per patch, merge^2 consecutive patches concatenated, Linear -> GELU(erf) -> Linear.
  const lnq = s.norm === 'rms' ? g.rmsNorm(h, w('merger.ln_q.weight', [D]), 1e-6) : g.layerNorm(h, w('merger.ln_q.weight', [D]), w('merger.ln_q.bias', [D]), 1e-6);
  out(lnq, 'vision.post_norm');
  const U = D * s.mergeSize * s.mergeSize;
  const units = g.reshape(lnq, [-1, U]); // [token, merge^2 * D]
  const merged = lin(g.gelu(lin(units, 'merger.mlp.0', U, U), 'none'), 'merger.mlp.2', s.outDim, U);
  out(merged, PROJECTOR_TAP);
  return { graph: g.build(), outputs };
}

export class QwenVisionTower {
  private constructor(readonly spec: QwenVisionSpec, private readonly session: TowerSession, readonly withProbs: boolean) {}

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  static async create(spec: QwenVisionSpec, ws: WeightSet, opts: { device?: Device; attentionProbs?: boolean } = {}): Promise<QwenVisionTower> {
    const build = (allOutputs: boolean) => buildVisionGraph(spec, ws, !!opts.attentionProbs, allOutputs);
    const session = await TowerSession.create(build, [PROJECTOR_TAP], { device: opts.device });
    return new QwenVisionTower(spec, session, !!opts.attentionProbs);
  }

  /**
   * pixelValues [patch, C*T*P*P] for the images `grids` (in order). Returns the fetched outputs: vision.embed,
   * vision.{L}.out, vision.post_norm ([patch, dVision], pixel_values order), projector.out ([token, dModel]).
   */
  async run(pixelValues: Tensor, grids: readonly GridThw[], fetch: readonly string[], attentionProbs = false): Promise<Map<string, Tensor<'float32'>>> {
    const s = this.spec;
    const n = grids.reduce((a, g) => a + patchCount(g), 0);
    if (pixelValues.dtype !== 'float32' || pixelValues.shape.length !== 2 || pixelValues.shape[1] !== s.patchDim || pixelValues.shape[0] !== n) {
      throw new KvlensInputError(`pixel_values must be float32 [${n}, ${s.patchDim}] for image_grid_thw ${JSON.stringify(grids)}, got ${pixelValues.dtype} [${pixelValues.shape.join(', ')}]`, 'pixel_values');
    }
    expectKnownOutputs(fetch, this.outputNames, `${s.variant} vision output`);
    const probs = attentionProbNames('vision', this.withProbs ? s.depth : 0, attentionProbs, 'load the model with { attentionProbs: true } to get vision attention probabilities');
    const rot = visionRotary(grids, s);
    const feeds: Record<string, Tensor> = {
      pixel_values: pixelValues,
      cos: tensor('float32', [n, s.headDim], rot.cos),
      sin: tensor('float32', [n, s.headDim], rot.sin),
      image_group: tensor('int64', [n], imageGroups(grids)),
    };
    if (s.windowUnits) feeds.window_group = tensor('int64', [n], windowGroups(grids, s));
    const all = [...new Set([...fetch, ...probs])];
    const r = await (await this.session.sessionFor(all)).run(feeds, all);
    return new Map(Object.entries(r) as [string, Tensor<'float32'>][]);
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
