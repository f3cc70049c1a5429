// Chunked prefill: a long call (thousands of anyres image tokens) is run as consecutive chunks of query positions,
// each continuing from the previous chunk's cache. Attention is exact (every query still sees all earlier keys;
// later keys are masked anyway), but the per-layer attention buffers (ORT's [batch, qHead, pos, total] scores and
// the [pos, total] masks) shrink from S x S to chunk x S: at S = 4000 with 14 heads that is 896 MB -> 224 MB (4 chunks of 1000 at the default 1024).
//
// This file only cuts a request into per-chunk requests and glues the results back together; DecoderLM.forward
// runs each chunk as an ordinary call.

import { tensor, type Tensor } from '../../tensor/tensor.js';
import type { BlockSpec } from './masks.js';

/** Integer row data: [batch][pos]. */
export type IntRows = number[][];

/**
 * Budget for the largest transient buffer of one layer pass. glibc serves blocks above 32 MiB (its largest mmap
 * threshold) with fresh mappings, and on the VMs we run on touching fresh pages costs ~50 µs per 4 KiB page: a layer
 * whose scores need 64 MB paid ~0.8 s of page faults, every layer, every chunk, every image. Below the threshold, freed
 * blocks are reused by the next layer (with the tunables of src/runtime/malloc.ts). 24 MiB leaves room for the
 * attention kernel's own small buffers.
 */
export const TRANSIENT_BUDGET_BYTES = 24 * 2 ** 20;
/** Shortest query chunk the budget may ask for: below this the weight matmuls lose efficiency. */
export const MIN_QUERY_CHUNK = 128;

/**
 * Query positions per pass: at most `cap`, and few enough that the attention scores [batch, qHead, chunk, keys] and
 * the MLP activations [batch, chunk, intermediate] (float32) fit TRANSIENT_BUDGET_BYTES, but never below
 * MIN_QUERY_CHUNK (very long sequences then exceed the budget rather than run thin matmuls).
 */
export function queryChunk(cap: number, dims: { batch: number; qHeads: number; keys: number; intermediate: number }): number {
  const perQuery = 4 * dims.batch * Math.max(dims.qHeads * dims.keys, dims.intermediate);
  const fit = Math.floor(TRANSIENT_BUDGET_BYTES / perQuery);
  return Math.min(cap, Math.max(MIN_QUERY_CHUNK, fit));
}

/** [start, end) query indices (within the call) of each chunk. */
export function chunkBounds(S: number, chunk: number): Array<[number, number]> {
  // As few chunks as `chunk` allows, of near-equal size (no thin trailing chunk that would run the weights at low
  // utilisation): 761 at 512 -> 381 + 380, not 512 + 249.
  const n = Math.ceil(S / chunk);
  const out: Array<[number, number]> = [];
  for (let i = 0, c0 = 0; i < n; i++) {
    const c1 = c0 + Math.floor(S / n) + (i < S % n ? 1 : 0);
    out.push([c0, c1]);
    c0 = c1;
  }
  return out;
}

/** Columns [c0, c1) of every row. */
export function sliceRows(rows: readonly (readonly number[])[], c0: number, c1: number): IntRows {
  return rows.map((r) => r.slice(c0, c1));
}

/** x [batch, pos, ...] -> positions [c0, c1) (a view when batch is 1). */
export function slicePos(x: Tensor<'float32'>, c0: number, c1: number): Tensor<'float32'> {
  const [B, S] = x.shape;
  const inner = x.data.length / (B * S);
  const shape = [B, c1 - c0, ...x.shape.slice(2)];
  if (B === 1) return tensor('float32', shape, x.data.subarray(c0 * inner, c1 * inner));
  const out = new Float32Array(B * (c1 - c0) * inner);
  for (let b = 0; b < B; b++) out.set(x.data.subarray((b * S + c0) * inner, (b * S + c1) * inner), b * (c1 - c0) * inner);
  return tensor('float32', shape, out);
}

/**
 * The block specs restricted to one chunk whose queries are absolute positions [q0, q1): explicit queries outside it
 * are dropped (they belong to another chunk), keys at or after q1 are dropped (causality masks them already), and a
 * spec left without queries for this chunk disappears.
 */
export function chunkBlocks(specs: readonly BlockSpec[] | undefined, q0: number, q1: number): BlockSpec[] {
  const out: BlockSpec[] = [];
  for (const s of specs ?? []) {
    const queries = s.queries?.filter((q) => q >= q0 && q < q1);
    const from = s.queriesFrom !== undefined && s.queriesFrom < q1 ? s.queriesFrom : undefined;
    if (!queries?.length && from === undefined) continue;
    out.push({
      layers: s.layers,
      keys: s.keys.filter((k) => k < q1),
      ...(queries?.length ? { queries } : {}),
      ...(from !== undefined ? { queriesFrom: from } : {}),
    });
  }
  return out;
}

/** Concatenate tensors along `axis` (all other dims equal). */
export function concatAxis(parts: readonly Tensor<'float32'>[], axis: number): Tensor<'float32'> {
  if (parts.length === 1) return parts[0];
  const shape = [...parts[0].shape];
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const total = parts.reduce((a, p) => a + p.shape[axis], 0);
  const out = new Float32Array(outer * total * inner);
  for (let o = 0; o < outer; o++) {
    let at = o * total * inner;
    for (const p of parts) {
      const n = p.shape[axis] * inner;
      out.set(p.data.subarray(o * n, (o + 1) * n), at);
      at += n;
    }
  }
  shape[axis] = total;
  return tensor('float32', shape, out);
}

/** The position axis of a per-position LM tap: attn.k / attn.v are [batch, kvHead, pos, dHead], the rest [batch, pos, ...]. */
export function tapPosAxis(name: string): number {
  return /\.attn\.[kv]$/.test(name) ? 2 : 1;
}

/** Glue per-chunk taps (same names in each chunk; 'logits' only in chunks that computed some). */
export function mergeChunkTaps(names: readonly string[], parts: readonly Map<string, Tensor<'float32'>>[]): Map<string, Tensor<'float32'>> {
  const out = new Map<string, Tensor<'float32'>>();
  for (const n of names) {
    const got = parts.map((p) => p.get(n)).filter((t): t is Tensor<'float32'> => t !== undefined);
    if (got.length) out.set(n, concatAxis(got, tapPosAxis(n)));
  }
  return out;
}
