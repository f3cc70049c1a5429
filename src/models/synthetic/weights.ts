// Shared pieces of the synthetic checkpoint generators: the list of weights a family's checkpoint holds (names,
// shapes, init kind), the blocks every family repeats (a Llama/Qwen2-style decoder, a CLIP/SigLIP encoder layer),
// and the streaming, seeded safetensors writer. A family generator only lists what differs.

import { writeFileSync, openSync, writeSync, closeSync, renameSync, existsSync, rmSync } from 'node:fs';
import { layoutSafetensors } from '../../tensor/safetensors.js';
import { f32ToBf16, f32ToF16, type DType } from '../../tensor/tensor.js';
import { Rng, hashSeed } from '../../util/random.js';

export interface WeightSpec { name: string; shape: number[]; init: 'linear' | 'bias' | 'embedding' | 'norm_weight' | 'norm_bias'; fanIn?: number }

/** An ordered weight list with helpers for the common parameter kinds (file order = call order). */
export class WeightList {
  readonly specs: WeightSpec[] = [];

  push(name: string, shape: number[], init: WeightSpec['init'], fanIn?: number): void {
    this.specs.push(fanIn === undefined ? { name, shape, init } : { name, shape, init, fanIn });
  }

  /** An HF Linear: `<name>.weight` [out, in] (+ `<name>.bias` [out]). */
  linear(name: string, out: number, inp: number, bias: boolean): void {
    this.push(`${name}.weight`, [out, inp], 'linear', inp);
    if (bias) this.push(`${name}.bias`, [out], 'bias');
  }

  /** A norm: `<name>.weight` (+ `<name>.bias` for LayerNorm). */
  norm(name: string, d: number, withBias: boolean): void {
    this.push(`${name}.weight`, [d], 'norm_weight');
    if (withBias) this.push(`${name}.bias`, [d], 'norm_bias');
  }
}

export interface DecoderShape { hidden: number; intermediate: number; layers: number; heads: number; kvHeads: number }

/**
 * A Llama/Qwen2-style decoder under `prefix` (e.g. "language_model.model"): embeddings, per layer RMSNorms, SwiGLU MLP and
 * q/k/v/o projections (q/k/v biased when `attnBias`, as Qwen2), final norm; `lmHead` names an untied head written first.
 */
export function decoderWeights(w: WeightList, prefix: string, t: DecoderShape, vocab: number, opts: { attnBias: boolean; lmHead?: string }): void {
  const kvDim = t.kvHeads * (t.hidden / t.heads);
  if (opts.lmHead) w.linear(opts.lmHead, vocab, t.hidden, false);
  w.push(`${prefix}.embed_tokens.weight`, [vocab, t.hidden], 'embedding');
  for (let l = 0; l < t.layers; l++) {
    const p = `${prefix}.layers.${l}`;
    w.norm(`${p}.input_layernorm`, t.hidden, false);
    w.linear(`${p}.mlp.down_proj`, t.hidden, t.intermediate, false);
    w.linear(`${p}.mlp.gate_proj`, t.intermediate, t.hidden, false);
    w.linear(`${p}.mlp.up_proj`, t.intermediate, t.hidden, false);
    w.norm(`${p}.post_attention_layernorm`, t.hidden, false);
    w.linear(`${p}.self_attn.k_proj`, kvDim, t.hidden, opts.attnBias);
    w.linear(`${p}.self_attn.o_proj`, t.hidden, t.hidden, false);
    w.linear(`${p}.self_attn.q_proj`, t.hidden, t.hidden, opts.attnBias);
    w.linear(`${p}.self_attn.v_proj`, kvDim, t.hidden, opts.attnBias);
  }
  w.norm(`${prefix}.norm`, t.hidden, false);
}

/** The encoder layers of a CLIP/SigLIP vision tower (same weight names in both): `<prefix>.encoder.layers.{l}.*`. */
export function vitEncoderLayers(w: WeightList, prefix: string, v: { hidden: number; intermediate: number; layers: number }): void {
  for (let l = 0; l < v.layers; l++) {
    const p = `${prefix}.encoder.layers.${l}`;
    for (const n of ['layer_norm1', 'layer_norm2']) {
      w.push(`${p}.${n}.bias`, [v.hidden], 'norm_bias');
      w.push(`${p}.${n}.weight`, [v.hidden], 'norm_weight');
    }
    w.linear(`${p}.mlp.fc1`, v.intermediate, v.hidden, true);
    w.linear(`${p}.mlp.fc2`, v.hidden, v.intermediate, true);
    for (const n of ['k_proj', 'out_proj', 'q_proj', 'v_proj']) w.linear(`${p}.self_attn.${n}`, v.hidden, v.hidden, true);
  }
}

/** Fill one tensor: uniform noise with the variance HF-style tests use (Linear 1/fan_in, bias 0.1^2, embedding 1, norms 1 +- 0.1). */
export function fillWeight(w: WeightSpec, seed: number): Float32Array {
  const n = w.shape.reduce((a, b) => a * b, 1);
  const rng = new Rng(hashSeed(w.name, seed));
  const out = new Float32Array(n);
  const std = w.init === 'linear' ? 1 / Math.sqrt(w.fanIn!) : w.init === 'embedding' ? 1 : 0.1;
  const half = std * Math.sqrt(3); // uniform(-a, a) has variance a^2 / 3
  const offset = w.init === 'norm_weight' ? 1 : 0;
  for (let i = 0; i < n; i++) out[i] = offset + (2 * rng.uniform() - 1) * half;
  return out;
}

/** Stream seeded weights to a safetensors file (temp file + rename); never more than one tensor in memory. */
export function writeWeights(path: string, specs: WeightSpec[], spec: { dtype: 'float32' | 'bfloat16' | 'float16'; align: number; seed: number }): void {
  const dtype: DType = spec.dtype;
  const { header, offsets } = layoutSafetensors(specs.map((w) => ({ name: w.name, dtype, shape: w.shape })), { format: 'pt' }, spec.align);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, header, 0, header.length, 0);
    specs.forEach((w, i) => {
      const f = fillWeight(w, spec.seed);
      const data = dtype === 'float32' ? f : dtype === 'bfloat16' ? f32ToBf16(f) : f32ToF16(f);
      writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 0, data.byteLength, header.length + offsets[i]);
    });
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* closed */ }
    if (existsSync(tmp)) rmSync(tmp);
    throw e;
  }
}

export function atomicWrite(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
