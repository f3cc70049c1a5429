// The KV cache a forward pass returns. Immutable: a continuation builds a new cache and never writes into
// the one it started from, so one prefilled prefix (an image) can serve many different continuations.
//
// Keys are POST-RoPE (what attention consumed), values as projected; both [batch, kvHead, length, dHead].

import type { Tensor } from '../../tensor/tensor.js';

export interface KvCache {
  /** Number of cached sequence positions. */
  readonly length: number;
  readonly batch: number;
  /** Per layer [batch, kvHead, length, dHead], post-RoPE. */
  readonly keys: readonly Tensor<'float32'>[];
  /** Per layer [batch, kvHead, length, dHead]. */
  readonly values: readonly Tensor<'float32'>[];
  /** Per row 1 = real token, 0 = padding, over the cached positions; absent when nothing was padded. */
  readonly padding?: readonly (readonly number[])[];
  /** Per row, the position id the next token gets by default (last position id + 1). */
  readonly nextPositions: readonly number[];
}

export function freezeCache(c: KvCache): KvCache {
  Object.freeze(c.keys);
  Object.freeze(c.values);
  return Object.freeze(c);
}

/** Approximate bytes held by a cache. */
export function cacheBytes(c: KvCache): number {
  let n = 0;
  for (const t of [...c.keys, ...c.values]) n += t.data.byteLength;
  return n;
}
