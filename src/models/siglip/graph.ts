// The SigLIP vision transformer as ONNX graph pieces, written into a caller's GraphBuilder so that a model can
// put more on top (LLaVA-OneVision's projector, the standalone model's pooling head) in the same session.
// Arithmetic follows transformers' SiglipVisionTransformer: Conv patch embedding (stride = patch) + learned
// position embedding; pre-norm encoder layers (LayerNorm -> MHA with biases -> residual, LayerNorm -> MLP ->
// residual); post_layernorm on the last layer; optional multihead-attention pooling head.

import type { GraphBuilder, Value, GeluApprox } from '../../graph/builder.js';
import type { WeightSet } from '../../tensor/safetensors.js';
import { siglipDims, type SiglipVisionConfig } from './config.js';

export interface SiglipGraphOptions {
  /** Weight name prefix: "vision_model." (standalone) or "vision_tower.vision_model." (LLaVA-OneVision). */
  readonly prefix: string;
  /** Build attention from MatMul/Softmax and expose the probabilities (slower; for parity and inspection). */
  readonly attentionProbs?: boolean;
}

export interface SiglipGraphValues {
  /** [tile, token, dVision] patch + position embeddings (HF hidden_states[0]) */
  readonly embed: Value;
  /** [tile, token, dVision] output of each encoder layer, no post-norm (HF hidden_states[1..]) */
  readonly layers: readonly Value[];
  /** [tile, token, dVision] post_layernorm(last layer) */
  readonly postNorm: Value;
  /** [tile, head, token, token] per layer, when attentionProbs was asked for */
  readonly probs: readonly Value[];
}

function geluApprox(act: SiglipVisionConfig['hidden_act']): GeluApprox | 'quick' {
  switch (act) {
    case 'gelu': return 'none';
    case 'quick_gelu': return 'quick';
    default: return 'tanh'; // gelu_pytorch_tanh, gelu_new, gelu_fast: the tanh approximation
  }
}

export function activation(g: GraphBuilder, x: Value, act: SiglipVisionConfig['hidden_act']): Value {
  const a = geluApprox(act);
  if (a === 'quick') return g.mul(x, g.sigmoid(g.mul(x, g.scalar(1.702, 'quick_gelu'))));
  return g.gelu(x, a);
}

/** pixel [tile, channels, imageSize, imageSize] -> the tower's values. */
export function buildSiglipTower(g: GraphBuilder, cfg: SiglipVisionConfig, ws: WeightSet, pixel: Value, opts: SiglipGraphOptions): SiglipGraphValues {
  const d = siglipDims(cfg);
  const p = opts.prefix;
  const w = (name: string, shape: readonly number[]) => g.weight(ws.expect(p + name, shape));
  const D = d.dModel;

  // Patch embedding: Conv with stride = patch -> [tile, D, side, side] -> [tile, token, D].
  const convW = w('embeddings.patch_embedding.weight', [D, cfg.num_channels, cfg.patch_size, cfg.patch_size]);
  const convB = w('embeddings.patch_embedding.bias', [D]);
  const conv = g.op('Conv', [pixel, convW, convB], {
    kernel_shape: { kind: 'ints', v: [cfg.patch_size, cfg.patch_size] },
    strides: { kind: 'ints', v: [cfg.patch_size, cfg.patch_size] },
  });
  const patches = g.transpose(g.reshape(conv, [0, D, d.tokens]), [0, 2, 1]); // [tile, token, D]
  const pos = w('embeddings.position_embedding.weight', [d.tokens, D]); // [token, D]
  const embed = g.add(patches, pos);

  const layers: Value[] = [];
  const probs: Value[] = [];
  let h = embed;
  for (let l = 0; l < d.layers; l++) {
    const lp = `encoder.layers.${l}.`;
    const ln1 = g.layerNorm(h, w(`${lp}layer_norm1.weight`, [D]), w(`${lp}layer_norm1.bias`, [D]), cfg.layer_norm_eps);
    const proj = (n: string) => g.linear(ln1, w(`${lp}self_attn.${n}.weight`, [D, D]), w(`${lp}self_attn.${n}.bias`, [D]));
    // [tile, token, D] -> [tile, head, token, dHead]
    const heads = (x: Value) => g.transpose(g.reshape(x, [0, 0, d.heads, d.dHead]), [0, 2, 1, 3]);
    const q = heads(proj('q_proj'));
    const k = heads(proj('k_proj'));
    const v = heads(proj('v_proj'));
    const scale = d.dHead ** -0.5;
    let ctx: Value;
    if (opts.attentionProbs) {
      const r = g.explicitAttention(q, k, v, null, scale, { q: d.heads, kv: d.heads, dHead: d.dHead });
      ctx = r.out;
      probs.push(r.probs);
    } else {
      ctx = g.fusedSelfAttention(q, k, v, scale, d.heads);
    }
    const merged = g.reshape(g.transpose(ctx, [0, 2, 1, 3]), [0, 0, D]); // [tile, token, D]
    const attnOut = g.linear(merged, w(`${lp}self_attn.out_proj.weight`, [D, D]), w(`${lp}self_attn.out_proj.bias`, [D]));
    h = g.add(h, attnOut);
    const ln2 = g.layerNorm(h, w(`${lp}layer_norm2.weight`, [D]), w(`${lp}layer_norm2.bias`, [D]), cfg.layer_norm_eps);
    const fc1 = g.linear(ln2, w(`${lp}mlp.fc1.weight`, [cfg.intermediate_size, D]), w(`${lp}mlp.fc1.bias`, [cfg.intermediate_size]));
    const fc2 = g.linear(activation(g, fc1, cfg.hidden_act), w(`${lp}mlp.fc2.weight`, [D, cfg.intermediate_size]), w(`${lp}mlp.fc2.bias`, [D]));
    h = g.add(h, fc2);
    layers.push(h);
  }
  const postNorm = g.layerNorm(h, w('post_layernorm.weight', [D]), w('post_layernorm.bias', [D]), cfg.layer_norm_eps);
  return { embed, layers, postNorm, probs };
}

/**
 * SigLIP's multihead-attention pooling head (vision_model.head.*): a learned probe attends over the post-normed
 * tokens with torch.nn.MultiheadAttention (packed in_proj), then residual + MLP(LayerNorm). Returns [tile, D].
 */
export function buildPoolingHead(g: GraphBuilder, cfg: SiglipVisionConfig, ws: WeightSet, tokens: Value, prefix: string): Value {
  const d = siglipDims(cfg);
  const D = d.dModel;
  const hp = `${prefix}head.`;
  const w = (name: string, shape: readonly number[]) => g.weight(ws.expect(hp + name, shape));
  const probe = w('probe', [1, 1, D]);
  // The packed in_proj [3D, D] is read as three [D, D] weights (row blocks q, k, v of the same file bytes), so each
  // is a plain Linear weight for g.linear.
  const third = (name: string, shape: readonly number[], i: number) => {
    const e = ws.expect(hp + name, [3 * D, ...shape.slice(1)]);
    const bytes = e.byteLength / 3;
    return g.weight({ ...e, name: `${e.name}.${'qkv'[i]}`, shape: [D, ...shape.slice(1)], fileOffset: e.fileOffset + i * bytes, byteLength: bytes });
  };
  const [wq, wk, wv] = [0, 1, 2].map((i) => third('attention.in_proj_weight', [3 * D, D], i));
  const [bq, bk, bv] = [0, 1, 2].map((i) => third('attention.in_proj_bias', [3 * D], i));
  const heads = (x: Value) => g.transpose(g.reshape(x, [0, 0, d.heads, d.dHead]), [0, 2, 1, 3]);
  const q = heads(g.linear(probe, wq, bq)); // [1, head, 1, dHead]
  const k = heads(g.linear(tokens, wk, bk)); // [tile, head, token, dHead]
  const v = heads(g.linear(tokens, wv, bv));
  // torch MHA divides q by sqrt(dHead) before q @ k^T; same value as scaling the scores.
  const qs = g.mul(q, g.scalar(d.dHead ** -0.5, 'mha_scale'));
  const scores = g.matmul(qs, g.transpose(k, [0, 1, 3, 2])); // [tile, head, 1, token]
  const ctx = g.matmul(g.softmax(scores, -1), v); // [tile, head, 1, dHead]
  const merged = g.reshape(g.transpose(ctx, [0, 2, 1, 3]), [0, 1, D]); // [tile, 1, D]
  const attn = g.linear(merged, w('attention.out_proj.weight', [D, D]), w('attention.out_proj.bias', [D]));
  const ln = g.layerNorm(attn, w('layernorm.weight', [D]), w('layernorm.bias', [D]), cfg.layer_norm_eps);
  const fc1 = g.linear(ln, w('mlp.fc1.weight', [cfg.intermediate_size, D]), w('mlp.fc1.bias', [cfg.intermediate_size]));
  const fc2 = g.linear(activation(g, fc1, cfg.hidden_act), w('mlp.fc2.weight', [D, cfg.intermediate_size]), w('mlp.fc2.bias', [D]));
  const pooled = g.add(attn, fc2); // [tile, 1, D]
  return g.reshape(pooled, [0, D]);
}
