// The CLIP vision transformer as ONNX graph pieces written into a caller's GraphBuilder (LLaVA-NeXT puts its
// projector on top in the same session). Arithmetic follows transformers' CLIPVisionTransformer:
//   patch Conv (stride = patch, NO bias) -> [CLS; patches] + position embedding -> pre_layrnorm ->
//   pre-norm encoder layers (LayerNorm -> MHA with biases -> residual, LayerNorm -> MLP -> residual);
//   post_layernorm is only applied by CLIPVisionModel to the CLS token (pooler_output).
// The encoder layer is the same block SigLIP uses (same weight names under encoder.layers.N).

import type { GraphBuilder, Value } from '../../graph/builder.js';
import type { WeightSet } from '../../tensor/safetensors.js';
import { activation } from '../siglip/graph.js';
import { clipDims, type ClipVisionConfig } from './config.js';

export interface ClipGraphOptions {
  /** Weight name prefix, e.g. "vision_tower.vision_model." (LLaVA-NeXT) or "vision_model." (CLIPVisionModel). */
  readonly prefix: string;
  /** Build attention from MatMul/Softmax and expose the probabilities. */
  readonly attentionProbs?: boolean;
}

export interface ClipGraphValues {
  /** [tile, token, dVision] class + patch + position embeddings, BEFORE pre_layrnorm (token 0 = CLS) */
  readonly embed: Value;
  /** HF hidden_states: [0] = pre_layrnorm(embed), [l+1] = output of encoder layer l; each [tile, token, dVision] */
  readonly hidden: readonly Value[];
  /** [tile, token, dVision] post_layernorm of the last layer (HF pools token 0 of it) */
  readonly postNorm: Value;
  /** [tile, head, token, token] per layer, when asked for */
  readonly probs: readonly Value[];
}

/** Hyper-parameters of a pre-norm ViT encoder layer with HF's CLIP/SigLIP weight names. */
export interface EncoderLayerSpec {
  readonly dModel: number;
  readonly heads: number;
  readonly intermediate: number;
  readonly eps: number;
  readonly act: ClipVisionConfig['hidden_act'];
}

/**
 * One encoder layer (`{prefix}layer_norm1`, `self_attn.{q,k,v,out}_proj`, `layer_norm2`, `mlp.fc1/fc2`).
 * h [tile, token, D] -> { out [tile, token, D], probs? [tile, head, token, token] }.
 */
export function preNormEncoderLayer(g: GraphBuilder, ws: WeightSet, prefix: string, s: EncoderLayerSpec, h: Value, withProbs: boolean): { out: Value; probs?: Value } {
  const D = s.dModel;
  const dh = D / s.heads;
  const w = (name: string, shape: readonly number[]) => g.weight(ws.expect(prefix + name, shape));
  const ln1 = g.layerNorm(h, w('layer_norm1.weight', [D]), w('layer_norm1.bias', [D]), s.eps);
  const proj = (n: string) => g.linear(ln1, w(`self_attn.${n}.weight`, [D, D]), w(`self_attn.${n}.bias`, [D]));
  const heads = (x: Value) => g.transpose(g.reshape(x, [0, 0, s.heads, dh]), [0, 2, 1, 3]); // [tile, head, token, dHead]
  const q = heads(proj('q_proj'));
  const k = heads(proj('k_proj'));
  const v = heads(proj('v_proj'));
  const scale = dh ** -0.5;
  let ctx: Value;
  let probs: Value | undefined;
  if (withProbs) {
    const r = g.explicitAttention(q, k, v, null, scale, { q: s.heads, kv: s.heads, dHead: dh });
    ctx = r.out;
    probs = r.probs;
  } else {
    ctx = g.fusedSelfAttention(q, k, v, scale, s.heads);
  }
  const merged = g.reshape(g.transpose(ctx, [0, 2, 1, 3]), [0, 0, D]); // [tile, token, D]
  const h1 = g.add(h, g.linear(merged, w('self_attn.out_proj.weight', [D, D]), w('self_attn.out_proj.bias', [D])));
  const ln2 = g.layerNorm(h1, w('layer_norm2.weight', [D]), w('layer_norm2.bias', [D]), s.eps);
  const fc1 = g.linear(ln2, w('mlp.fc1.weight', [s.intermediate, D]), w('mlp.fc1.bias', [s.intermediate]));
  const fc2 = g.linear(activation(g, fc1, s.act), w('mlp.fc2.weight', [D, s.intermediate]), w('mlp.fc2.bias', [D]));
  return { out: g.add(h1, fc2), probs };
}

/** pixel [tile, channels, imageSize, imageSize] -> the tower's values (every layer; taps may read any of them). */
export function buildClipTower(g: GraphBuilder, cfg: ClipVisionConfig, ws: WeightSet, pixel: Value, opts: ClipGraphOptions): ClipGraphValues {
  const d = clipDims(cfg);
  const p = opts.prefix;
  const D = d.dModel;
  const w = (name: string, shape: readonly number[]) => g.weight(ws.expect(p + name, shape));

  // Patch embedding: Conv without bias, stride = patch -> [tile, D, side, side] -> [tile, patch, D].
  const conv = g.op('Conv', [pixel, w('embeddings.patch_embedding.weight', [D, cfg.num_channels, cfg.patch_size, cfg.patch_size])], {
    kernel_shape: { kind: 'ints', v: [cfg.patch_size, cfg.patch_size] },
    strides: { kind: 'ints', v: [cfg.patch_size, cfg.patch_size] },
  });
  const patches = g.transpose(g.reshape(conv, [0, D, d.patches]), [0, 2, 1]); // [tile, patch, D]
  // CLS: class_embedding [D] expanded to [tile, 1, D], prepended.
  const cls = g.reshape(w('embeddings.class_embedding', [D]), [1, 1, D]);
  const tiles = g.slice(g.op('Shape', [patches]), [0], [1], [0]); // [1] int64
  const clsTiles = g.op('Expand', [cls, g.concat([tiles, g.ints([1, D])], 0)]); // [tile, 1, D]
  const tokens = g.concat([clsTiles, patches], 1); // [tile, token, D]
  const embed = g.add(tokens, w('embeddings.position_embedding.weight', [d.tokens, D]));

  const hidden: Value[] = [g.layerNorm(embed, w('pre_layrnorm.weight', [D]), w('pre_layrnorm.bias', [D]), cfg.layer_norm_eps)];
  const probs: Value[] = [];
  const spec: EncoderLayerSpec = { dModel: D, heads: d.heads, intermediate: cfg.intermediate_size, eps: cfg.layer_norm_eps, act: cfg.hidden_act };
  for (let l = 0; l < d.layers; l++) {
    const r = preNormEncoderLayer(g, ws, `${p}encoder.layers.${l}.`, spec, hidden[hidden.length - 1], !!opts.attentionProbs);
    hidden.push(r.out);
    if (r.probs) probs.push(r.probs);
  }
  const last = hidden[hidden.length - 1];
  const postNorm = g.layerNorm(last, w('post_layernorm.weight', [D]), w('post_layernorm.bias', [D]), cfg.layer_norm_eps);
  return { embed, hidden, postNorm, probs };
}
