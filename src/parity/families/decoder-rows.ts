// Rows for the decoder tensors every VLM run stores (same names in both fixture sets):
//   hidden_states.0 -> lm.embed, hidden_states.i (0 < i < N) -> lm.{i-1}.resid, hidden_states.N -> lm.final_norm,
//   past_key_values.l.key/value -> lm.{l}.attn.k/v, attentions.l -> lm.{l}.attn.probs,
//   lm.layers.l.self_attn.{q,k,v}_proj.output -> lm.{l}.attn.{q,k,v}_proj, logits; the same under "decodeK.".
// Used by the LLaVA-NeXT and Qwen2-VL families.

import type { Tensor } from '../../tensor/tensor.js';
import type { KvCache } from '../../models/lm/cache.js';
import { MODEL_TOL } from '../compare.js';
import type { RowSink } from './common.js';

/** The LM taps a run's tensors need (under `prefix`, e.g. "" or "decode1."). */
export function decoderTapsFor(sink: RowSink, prefix: string, layers: number): string[] {
  const has = (n: string) => sink.has(prefix + n);
  const taps: string[] = [];
  if (has('hidden_states.0')) taps.push('lm.embed');
  for (let l = 0; l < layers; l++) {
    if (l < layers - 1 && has(`hidden_states.${l + 1}`)) taps.push(`lm.${l}.resid`);
    if (has(`attentions.${l}`)) taps.push(`lm.${l}.attn.probs`);
    for (const p of ['q', 'k', 'v']) if (has(`lm.layers.${l}.self_attn.${p}_proj.output`)) taps.push(`lm.${l}.attn.${p}_proj`);
  }
  if (has(`hidden_states.${layers}`)) taps.push('lm.final_norm');
  return taps;
}

/** Compare every decoder tensor of the run under `prefix` with a forward result (cache = the full cache after it). */
export function compareDecoder(sink: RowSink, prefix: string, layers: number, out: { readonly taps: ReadonlyMap<string, Tensor>; readonly logits?: Tensor }, cache: KvCache | undefined, note?: string): void {
  const cmp = (name: string, t: Parameters<RowSink['compare']>[1] | undefined) => {
    if (sink.has(prefix + name) && t) sink.compare(prefix + name, t, MODEL_TOL, undefined, note);
  };
  cmp('hidden_states.0', out.taps.get('lm.embed'));
  for (let l = 0; l < layers - 1; l++) cmp(`hidden_states.${l + 1}`, out.taps.get(`lm.${l}.resid`));
  cmp(`hidden_states.${layers}`, out.taps.get('lm.final_norm'));
  for (let l = 0; l < layers; l++) {
    cmp(`past_key_values.${l}.key`, cache?.keys[l]);
    cmp(`past_key_values.${l}.value`, cache?.values[l]);
    cmp(`attentions.${l}`, out.taps.get(`lm.${l}.attn.probs`));
    for (const p of ['q', 'k', 'v']) cmp(`lm.layers.${l}.self_attn.${p}_proj.output`, out.taps.get(`lm.${l}.attn.${p}_proj`));
  }
  cmp('logits', out.logits);
}

/** decodeK indices present in a run, in order. */
export function decodeSteps(sink: RowSink): number[] {
  const steps = new Set<number>();
  for (const s of sink.specs()) { const m = /^decode(\d+)\.input_ids$/.exec(s.name); if (m) steps.add(Number(m[1])); }
  return [...steps].sort((a, b) => a - b);
}

export function idRows(t: { shape: readonly number[]; data: unknown }): number[][] {
  const [B, S] = t.shape;
  const v = Array.from(t.data as BigInt64Array, Number);
  return Array.from({ length: B }, (_, b) => v.slice(b * S, (b + 1) * S));
}
