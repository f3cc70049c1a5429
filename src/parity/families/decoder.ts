// The language-model half of a parity run, shared by every decoder family (Qwen2, LLaVA-OneVision, ...):
// which reference tensor is which kvlens tap, the run's mask inputs, real-token selection for padded batches,
// the comparison of one forward step, and cached decode steps fed the stored decodeN.input_ids.
//
//   hidden_states.0 -> lm.embed;  hidden_states.N (0 < N < layers) -> lm.{N-1}.resid;  hidden_states.{layers} -> lm.final_norm
//   past_key_values.L.key / .value -> the returned cache (post-RoPE keys, all cached positions)
//   attentions.L -> lm.L.attn.probs;  lm.layers.L.self_attn.{q,k,v}_proj.output -> lm.L.attn.{q,k,v}_proj;  logits -> logits
// A decode step's tensors carry the prefix "decodeN." and are computed by continuing the previous step's cache.

import { argmaxRows } from '../../models/lm/index.js';
import type { KvlensModel, ModelForwardResult, StepOptions } from '../../models/types.js';
import { i64, type Tensor } from '../../tensor/tensor.js';
import { EXACT, MODEL_TOL } from '../compare.js';
import { indexed, type RowSink } from './common.js';

export type LmTarget =
  | { readonly kind: 'tap'; readonly hook: string; readonly posAxis: number }
  | { readonly kind: 'cacheK' | 'cacheV'; readonly layer: number }
  | { readonly kind: 'beyond'; readonly why: string };

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Reference tensor name -> what kvlens computes for it, for the tensors of one step (prefix "" or "decodeN."). */
export function lmTargets(names: readonly string[], prefix: string, numLayers: number): Map<string, LmTarget> {
  const p = escape(prefix);
  const out = new Map<string, LmTarget>();
  for (const [n, name] of indexed(names, new RegExp(`^${p}hidden_states\\.(\\d+)$`))) {
    if (n === 0) out.set(name, { kind: 'tap', hook: 'lm.embed', posAxis: 1 });
    else if (n < numLayers) out.set(name, { kind: 'tap', hook: `lm.${n - 1}.resid`, posAxis: 1 });
    else if (n === numLayers) out.set(name, { kind: 'tap', hook: 'lm.final_norm', posAxis: 1 }); // HF's last entry is post-norm
    else out.set(name, { kind: 'beyond', why: `the model has ${numLayers} layers, so hidden_states has ${numLayers + 1} entries` });
  }
  for (const name of names) {
    let m = new RegExp(`^${p}past_key_values\\.(\\d+)\\.(key|value)$`).exec(name);
    if (m) {
      const layer = Number(m[1]);
      out.set(name, layer < numLayers ? { kind: m[2] === 'key' ? 'cacheK' : 'cacheV', layer } : { kind: 'beyond', why: `no layer ${layer} (${numLayers} layers)` });
      continue;
    }
    m = new RegExp(`^${p}attentions\\.(\\d+)$`).exec(name);
    if (m) {
      out.set(name, Number(m[1]) < numLayers ? { kind: 'tap', hook: `lm.${m[1]}.attn.probs`, posAxis: 2 } : { kind: 'beyond', why: `no layer ${m[1]}` });
      continue;
    }
    m = new RegExp(`^${p}lm\\.layers\\.(\\d+)\\.self_attn\\.([qkv])_proj\\.output$`).exec(name);
    if (m) {
      out.set(name, Number(m[1]) < numLayers ? { kind: 'tap', hook: `lm.${m[1]}.attn.${m[2]}_proj`, posAxis: 1 } : { kind: 'beyond', why: `no layer ${m[1]}` });
      continue;
    }
    if (name === `${prefix}logits`) out.set(name, { kind: 'tap', hook: 'logits', posAxis: 1 });
  }
  return out;
}

export function tapsOf(targets: ReadonlyMap<string, LmTarget>): string[] {
  const taps: string[] = [];
  for (const t of targets.values()) if (t.kind === 'tap' && !taps.includes(t.hook)) taps.push(t.hook);
  return taps;
}

/** The run's attention inputs (masks and explicit position ids), marked as inputs in the report. */
export function maskInputs(sink: RowSink): StepOptions {
  const opts: { -readonly [K in keyof StepOptions]: StepOptions[K] } = {};
  const f32 = (n: string) => sink.ref(n) as Tensor<'float32'>;
  if (sink.has('attention_mask_4d.layers')) {
    // Per-layer masks: the listed layers use attention_mask_4d, every other layer attention_mask_4d.base.
    const layers = Array.from(sink.ref('attention_mask_4d.layers').data as ArrayLike<number | bigint>, Number);
    opts.layerMasks = new Map(layers.map((l) => [l, f32('attention_mask_4d')]));
    if (sink.has('attention_mask_4d.base')) opts.denseMask = f32('attention_mask_4d.base');
    sink.mark('attention_mask_4d.layers', 'input', 'layers given attention_mask_4d');
    sink.mark('attention_mask_4d', 'input', `additive mask of decoder layers ${layers.join(', ')}`);
    if (sink.has('attention_mask_4d.base')) sink.mark('attention_mask_4d.base', 'input', 'additive mask of the other decoder layers');
  } else if (sink.has('attention_mask_4d')) {
    opts.denseMask = f32('attention_mask_4d');
    sink.mark('attention_mask_4d', 'input', 'additive mask used in every decoder layer');
  }
  if (sink.has('position_ids') && sink.ref('position_ids').shape.length === 2) {
    opts.positionIds = sink.ref('position_ids');
    sink.mark('position_ids', 'input', 'explicit position ids, as passed to the HF model');
  }
  return opts;
}

/** A 2-D attention_mask with padding (zeros): rows [batch][pos] of 1 = real, else undefined. */
export function paddingRows(sink: RowSink): number[][] | undefined {
  if (!sink.has('attention_mask')) return undefined;
  const t = sink.ref('attention_mask');
  if (t.shape.length !== 2) return undefined;
  const [B, S] = t.shape;
  const v = Array.from(t.data as ArrayLike<number | bigint>, Number);
  if (v.every((x) => x === 1)) return undefined;
  return Array.from({ length: B }, (_, b) => v.slice(b * S, (b + 1) * S));
}

/** Flags selecting the elements at real positions along `posAxis` (padded positions carry no meaning in HF). */
function realTokenFlags(shape: readonly number[], posAxis: number, rows: number[][]): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const inner = shape.slice(posAxis + 1).reduce((a, b) => a * b, 1);
  const mid = shape.slice(1, posAxis).reduce((a, b) => a * b, 1);
  const S = shape[posAxis];
  const flags = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const pos = Math.floor(i / inner) % S;
    const b = Math.floor(i / (inner * S * mid));
    flags[i] = rows[b][pos] === 1 ? 1 : 0;
  }
  return flags;
}

/** Compare one step's tensors (prefill or a decode step) against the model result. */
export function compareLmStep(sink: RowSink, targets: ReadonlyMap<string, LmTarget>, res: ModelForwardResult, padding?: number[][], note?: string): void {
  for (const [name, t] of targets) {
    if (t.kind === 'beyond') {
      sink.mark(name, 'error', t.why);
    } else if (t.kind === 'tap') {
      const got = t.hook === 'logits' ? res.logits : res.taps.get(t.hook);
      if (got) sink.compare(name, got, MODEL_TOL, padding ? realTokenFlags(got.shape, t.posAxis, padding) : undefined, note);
      else sink.mark(name, 'error', `kvlens returned no ${t.hook}`);
    } else {
      const got = (t.kind === 'cacheK' ? res.cache.keys : res.cache.values)[t.layer]; // [batch, kvHead, cached, dHead]
      sink.compare(name, got, MODEL_TOL, padding ? realTokenFlags(got.shape, 2, padding) : undefined, note);
    }
  }
}

/**
 * Decode steps decode1, decode2, ... in order: decodeN.input_ids is checked against the argmax of kvlens' previous
 * logits, then fed (the stored ids, so one differing argmax cannot derail later steps) on the previous cache.
 */
export async function runDecodeSteps(sink: RowSink, model: KvlensModel, prefill: ModelForwardResult): Promise<void> {
  const names = sink.specs().map((s) => s.name);
  const steps = [...indexed(names, /^decode(\d+)\.input_ids$/).keys()].sort((a, b) => a - b);
  let prev = prefill;
  for (const step of steps) {
    const idsName = `decode${step}.input_ids`;
    const stored = sink.ref(idsName);
    const [B, S] = stored.shape;
    if (S === 1 && prev.logits && prev.logits.shape[0] === B) {
      const argmax = argmaxRows(prev.logits);
      sink.compare(idsName, i64([B, 1], argmax), EXACT, undefined, 'argmax of kvlens\' previous logits');
    } else {
      sink.mark(idsName, 'input', 'decode input ids from the fixture');
    }
    const targets = lmTargets(names, `decode${step}.`, model.dims.lmLayers);
    const v = Array.from(stored.data as ArrayLike<number | bigint>, Number);
    const ids = Array.from({ length: B }, (_, b) => v.slice(b * S, (b + 1) * S));
    prev = await model.continue(prev.cache, ids, { taps: tapsOf(targets), logitsAt: 'all' });
    compareLmStep(sink, targets, prev, undefined, `continued on the cache of ${step === 1 ? 'the prefill' : `decode${step - 1}`}`);
  }
}
