// Attention masks for the decoder. One shared additive mask [batch|1, 1, pos, past+pos] (causal + padding,
// or a caller's dense mask used verbatim as HF does), and per layer a tiny blocked-query / blocked-key
// description that the layer graph expands itself: interventions on long sequences never build per-layer
// S x T tensors in JS.

import { F32_MIN } from '../../graph/builder.js';
import { tensor, type Tensor } from '../../tensor/tensor.js';
import { KvlensUsageError } from '../../util/errors.js';

/**
 * Block attention from queries to `keys` in `layers`. Positions are absolute sequence indices (0 = first token
 * of the cached prefix, if any), not position ids. Queries are `queries` (explicit positions, which must lie in the
 * tokens of the current call) and/or every position >= `queriesFrom` — the open-ended form the paper's intervention
 * needs, since it keeps applying to later continuations and to every generated token.
 */
export interface BlockSpec {
  readonly layers: readonly number[];
  readonly queries?: readonly number[];
  readonly queriesFrom?: number;
  readonly keys: readonly number[];
}

/** The query positions of `spec` that fall in this call's tokens [past, past+S). */
export function queryPositions(spec: BlockSpec, S: number, past: number): number[] {
  const out = new Set<number>(spec.queries ?? []);
  if (spec.queriesFrom !== undefined) for (let p = Math.max(past, spec.queriesFrom); p < past + S; p++) out.add(p);
  return [...out].sort((a, b) => a - b);
}

/** Integers a..b-1, for building BlockSpecs. */
export function span(start: number, end: number): number[] {
  return Array.from({ length: Math.max(0, end - start) }, (_, i) => start + i);
}

/**
 * Causal mask over past+pos keys, plus padding from a 2-D mask [batch, past+pos] (1 = real, 0 = pad).
 * Returns [1, 1, pos, total] without padding, [batch, 1, pos, total] with it.
 */
export function causalMask(S: number, past: number, padding?: { batch: number; data: ArrayLike<number | bigint> }): Tensor<'float32'> {
  const T = past + S;
  const B = padding ? padding.batch : 1;
  const m = new Float32Array(B * S * T);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < S; i++) {
      const row = (b * S + i) * T;
      for (let j = past + i + 1; j < T; j++) m[row + j] = F32_MIN;
      if (padding) for (let j = 0; j < T; j++) if (Number(padding.data[b * T + j]) === 0) m[row + j] = F32_MIN;
    }
  }
  return tensor('float32', [B, 1, S, T], m);
}

export interface LayerBlock {
  readonly q: Tensor<'bool'>; // [1, 1, pos, 1]
  readonly k: Tensor<'bool'>; // [1, 1, 1, total]
}

/** Check every spec against the model and the call; group them per layer. */
export function planBlocks(specs: readonly BlockSpec[], numLayers: number, S: number, past: number): Map<number, BlockSpec[]> {
  const T = past + S;
  const byLayer = new Map<number, BlockSpec[]>();
  specs.forEach((spec, i) => {
    for (const l of spec.layers) {
      if (!Number.isInteger(l) || l < 0 || l >= numLayers) throw new KvlensUsageError(`block[${i}]: layer ${l} is out of range 0..${numLayers - 1}`);
    }
    if (spec.queriesFrom !== undefined && (!Number.isInteger(spec.queriesFrom) || spec.queriesFrom < 0)) {
      throw new KvlensUsageError(`block[${i}]: queriesFrom must be a non-negative integer, got ${spec.queriesFrom}`);
    }
    if (spec.queries === undefined && spec.queriesFrom === undefined) throw new KvlensUsageError(`block[${i}]: give queries and/or queriesFrom`);
    for (const q of spec.queries ?? []) {
      if (!Number.isInteger(q) || q >= T || q < 0) throw new KvlensUsageError(`block[${i}]: query position ${q} is outside the sequence 0..${T - 1}`);
      if (q < past) throw new KvlensUsageError(`block[${i}]: query position ${q} lies in the cached prefix (0..${past - 1}); its attention was computed when the cache was built`);
    }
    for (const k of spec.keys) {
      if (!Number.isInteger(k) || k < 0 || k >= T) throw new KvlensUsageError(`block[${i}]: key position ${k} is outside the sequence 0..${T - 1}`);
    }
    for (const l of new Set(spec.layers)) byLayer.set(l, [...(byLayer.get(l) ?? []), spec]);
  });
  return byLayer;
}

/** The no-op block inputs (nothing blocked). */
export function noBlock(S: number, T: number): LayerBlock {
  return { q: tensor('bool', [1, 1, S, 1], new Uint8Array(S)), k: tensor('bool', [1, 1, 1, T], new Uint8Array(T)) };
}

/** One spec as graph inputs: an outer product of a query selection and a key selection. */
export function blockInputs(spec: BlockSpec, S: number, past: number): LayerBlock {
  const T = past + S;
  const q = new Uint8Array(S);
  const k = new Uint8Array(T);
  for (const p of queryPositions(spec, S, past)) q[p - past] = 1;
  for (const p of spec.keys) k[p] = 1;
  return { q: tensor('bool', [1, 1, S, 1], q), k: tensor('bool', [1, 1, 1, T], k) };
}

/**
 * Several specs on one layer are a union of outer products, which one (q, k) pair cannot express:
 * fold them into a copy of the base mask for that layer only (rare; costs one S x T tensor while it runs).
 */
export function foldBlocks(base: Tensor<'float32'>, specs: readonly BlockSpec[], past: number): Tensor<'float32'> {
  const [B, , S, T] = base.shape;
  const m = Float32Array.from(base.data);
  for (const spec of specs) {
    const qs = queryPositions(spec, S, past);
    for (let b = 0; b < B; b++) for (const qp of qs) for (const kp of spec.keys) m[(b * S + (qp - past)) * T + kp] = F32_MIN;
  }
  return tensor('float32', base.shape, m);
}
