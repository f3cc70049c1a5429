// ONNX graphs of the shared decoder: one graph per decoder layer (that layer's weights only) and one for
// final norm + LM head at chosen positions. JS runs them in sequence, so taps, per-layer masks and early
// stop need no framework support.
//
// Keys are POST-RoPE everywhere they leave a graph (present_k, the attn.k tap, the KV cache).

import { F32_MIN, GraphBuilder, type BuiltGraph, type Value } from '../../graph/builder.js';
import type { WeightSet } from '../../tensor/safetensors.js';
import { embedWeightName, finalNormWeightName, layerWeightNames, type DecoderConfig } from './config.js';

/** Names of a layer graph's inputs and outputs. */
export const LAYER_IO = {
  hidden: 'hidden', // [batch, pos, dModel]
  cos: 'cos', // [batch, pos, dHead]   rotate-half layout (each frequency twice)
  sin: 'sin', // [batch, pos, dHead]
  mask: 'mask', // [batch|1, 1, pos, past+pos]   additive: 0 keep, F32_MIN drop
  blockQ: 'block_q', // [1, 1, pos, 1] bool   queries whose attention to block_k keys is removed in this layer
  blockK: 'block_k', // [1, 1, 1, past+pos] bool
  pastK: 'past_k', // [batch, kvHead, past, dHead]
  pastV: 'past_v',
  out: 'hidden_out', // [batch, pos, dModel]   residual stream after the layer
  qProj: 'q_proj', // [batch, pos, qHead*dHead]   pre-RoPE
  kProj: 'k_proj', // [batch, pos, kvHead*dHead]  pre-RoPE
  vProj: 'v_proj',
  presentK: 'present_k', // [batch, kvHead, past+pos, dHead]   post-RoPE
  presentV: 'present_v',
  probs: 'probs', // [batch, qHead, pos, past+pos]   only in the explicit-attention variant
} as const;

/** HF rotate_half RoPE: x * cos + rotate_half(x) * sin, x [batch, head, pos, dHead], cos/sin [batch, 1, pos, dHead]. */
function rope(g: GraphBuilder, x: Value, cos: Value, sin: Value, dHead: number): Value {
  const [x1, x2] = g.split(x, [dHead / 2, dHead / 2], 3);
  const rotated = g.concat([g.neg(x2), x1], 3);
  return g.add(g.mul(x, cos), g.mul(rotated, sin));
}

function linearWeights(g: GraphBuilder, ws: WeightSet, base: string, out: number, inp: number, bias: boolean) {
  const w = g.weight(ws.expect(`${base}.weight`, [out, inp]));
  const b = bias ? g.weight(ws.expect(`${base}.bias`, [out])) : undefined;
  return (x: Value) => g.linear(x, w, b);
}

function activation(g: GraphBuilder, x: Value, act: DecoderConfig['hiddenAct']): Value {
  switch (act) {
    case 'silu': return g.silu(x);
    case 'gelu': return g.gelu(x, 'none');
    case 'gelu_pytorch_tanh': return g.gelu(x, 'tanh');
  }
}

/**
 * One pre-norm decoder layer: RMSNorm -> q/k/v (+bias) -> RoPE -> GQA attention with past -> o_proj -> residual,
 * RMSNorm -> gated MLP -> residual. `explicitAttention` builds the MatMul/Softmax variant with a probs output.
 */
export function buildLayerGraph(cfg: DecoderConfig, ws: WeightSet, layer: number, opts: { explicitAttention?: boolean } = {}): BuiltGraph {
  const { hiddenSize: D, numHeads: H, numKvHeads: KV, headDim: dh, intermediateSize: I } = cfg;
  const n = layerWeightNames(cfg, layer);
  const g = new GraphBuilder(`${cfg.arch}.layer${layer}${opts.explicitAttention ? '.explicit' : ''}`);
  const x = g.input(LAYER_IO.hidden, 'float32', ['batch', 'pos', D]);
  const cos = g.unsqueeze(g.input(LAYER_IO.cos, 'float32', ['batch', 'pos', dh]), [1]); // [batch, 1, pos, dHead]
  const sin = g.unsqueeze(g.input(LAYER_IO.sin, 'float32', ['batch', 'pos', dh]), [1]);
  const mask = g.input(LAYER_IO.mask, 'float32', ['mask_batch', 1, 'pos', 'total']);
  const blockQ = g.input(LAYER_IO.blockQ, 'bool', [1, 1, 'pos', 1]);
  const blockK = g.input(LAYER_IO.blockK, 'bool', [1, 1, 1, 'total']);
  const pastK = g.input(LAYER_IO.pastK, 'float32', ['batch', KV, 'past', dh]);
  const pastV = g.input(LAYER_IO.pastV, 'float32', ['batch', KV, 'past', dh]);

  const h = g.rmsNorm(x, g.weight(ws.expect(n.inputNorm, [D])), cfg.rmsNormEps);
  const q = linearWeights(g, ws, n.q, H * dh, D, cfg.qkvBias)(h); // [batch, pos, qHead*dHead]
  const k = linearWeights(g, ws, n.k, KV * dh, D, cfg.qkvBias)(h); // [batch, pos, kvHead*dHead]
  const v = linearWeights(g, ws, n.v, KV * dh, D, cfg.qkvBias)(h);
  g.output(q, LAYER_IO.qProj);
  g.output(k, LAYER_IO.kProj);
  g.output(v, LAYER_IO.vProj);
  const heads = (t: Value, nh: number) => g.transpose(g.reshape(t, [0, 0, nh, dh]), [0, 2, 1, 3]); // [batch, head, pos, dHead]
  const qr = rope(g, heads(q, H), cos, sin, dh);
  const kr = rope(g, heads(k, KV), cos, sin, dh);
  const kAll = g.output(g.concat([pastK, kr], 2), LAYER_IO.presentK); // [batch, kvHead, past+pos, dHead]
  const vAll = g.output(g.concat([pastV, heads(v, KV)], 2), LAYER_IO.presentV);
  // Per-layer blocking: queries in block_q lose the keys in block_k (outer product, expanded here, never in JS).
  const blocked = g.op('And', [blockQ, blockK]); // [1, 1, pos, total]
  const m = g.where(blocked, g.scalar(F32_MIN, 'blocked'), mask);
  const scale = 1 / Math.sqrt(dh);
  let attn: Value; // [batch, qHead, pos, dHead]
  if (opts.explicitAttention) {
    const ex = g.explicitAttention(qr, kAll, vAll, m, scale, { q: H, kv: KV, dHead: dh });
    g.output(ex.probs, LAYER_IO.probs);
    attn = ex.out;
  } else {
    attn = g.attention(qr, kAll, vAll, m, scale);
  }
  const merged = g.reshape(g.transpose(attn, [0, 2, 1, 3]), [0, 0, H * dh]); // [batch, pos, qHead*dHead]
  const h1 = g.add(x, linearWeights(g, ws, n.o, D, H * dh, cfg.oBias)(merged));
  const h2 = g.rmsNorm(h1, g.weight(ws.expect(n.postAttnNorm, [D])), cfg.rmsNormEps);
  const gate = linearWeights(g, ws, n.gate, I, D, cfg.mlpBias)(h2);
  const up = linearWeights(g, ws, n.up, I, D, cfg.mlpBias)(h2);
  const down = linearWeights(g, ws, n.down, D, I, cfg.mlpBias)(g.mul(activation(g, gate, cfg.hiddenAct), up));
  g.output(g.add(h1, down), LAYER_IO.out);
  return g.build();
}

/**
 * The attn.probs tap without a second copy of the layer's weights: a weightless graph (one session serves every
 * layer) that recomputes softmax(RoPE(q) k^T / sqrt(dHead) + mask) from the layer's own q_proj and present_k
 * outputs, with the same mask and block inputs. The layer's hidden output still comes from the fused Attention.
 */
export function buildProbsGraph(cfg: DecoderConfig): BuiltGraph {
  const { numHeads: H, numKvHeads: KV, headDim: dh } = cfg;
  const g = new GraphBuilder(`${cfg.arch}.attn_probs`);
  const q = g.input(LAYER_IO.qProj, 'float32', ['batch', 'pos', H * dh]);
  const cos = g.unsqueeze(g.input(LAYER_IO.cos, 'float32', ['batch', 'pos', dh]), [1]);
  const sin = g.unsqueeze(g.input(LAYER_IO.sin, 'float32', ['batch', 'pos', dh]), [1]);
  const mask = g.input(LAYER_IO.mask, 'float32', ['mask_batch', 1, 'pos', 'total']);
  const blockQ = g.input(LAYER_IO.blockQ, 'bool', [1, 1, 'pos', 1]);
  const blockK = g.input(LAYER_IO.blockK, 'bool', [1, 1, 1, 'total']);
  const k = g.input(LAYER_IO.presentK, 'float32', ['batch', KV, 'total', dh]); // post-RoPE
  const qr = rope(g, g.transpose(g.reshape(q, [0, 0, H, dh]), [0, 2, 1, 3]), cos, sin, dh);
  const m = g.where(g.op('And', [blockQ, blockK]), g.scalar(F32_MIN, 'blocked'), mask);
  g.output(g.attentionProbs(qr, k, m, 1 / Math.sqrt(dh), { q: H, kv: KV, dHead: dh }), LAYER_IO.probs);
  return g.build();
}

export const HEAD_IO = {
  hidden: 'hidden', // [batch, pos, dModel]   last layer's residual stream
  at: 'logits_at', // [k] int64   sequence indices to compute logits at
  norm: 'final_norm', // [batch, pos, dModel]
  logits: 'logits', // [batch, k, vocab]
} as const;

/** The LM head's weight: lm_head, or the embedding matrix when the config ties them. */
export function headWeightName(cfg: DecoderConfig): string {
  if (cfg.tieWordEmbeddings) return embedWeightName(cfg);
  return cfg.weights.lmHead; // ws.expect reports a missing untied head by name
}

/** Final RMSNorm over every position, LM head only at `logits_at` (full-sequence logits are costly). */
export function buildHeadGraph(cfg: DecoderConfig, ws: WeightSet): BuiltGraph {
  const g = new GraphBuilder(`${cfg.arch}.head`);
  const x = g.input(HEAD_IO.hidden, 'float32', ['batch', 'pos', cfg.hiddenSize]);
  const at = g.input(HEAD_IO.at, 'int64', ['k']);
  const normed = g.rmsNorm(x, g.weight(ws.expect(finalNormWeightName(cfg), [cfg.hiddenSize])), cfg.rmsNormEps);
  g.output(normed, HEAD_IO.norm);
  const picked = g.gather(normed, at, 1); // [batch, k, dModel]
  const w = g.weight(ws.expect(headWeightName(cfg), [cfg.vocabSize, cfg.hiddenSize]));
  g.output(g.linear(picked, w), HEAD_IO.logits);
  return g.build();
}
