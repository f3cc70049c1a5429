// The one BlockSpec builder. A block hides chosen image keys from text queries in chosen layers; which keys depends on
// the prompt (its token map), which queries on the call (the question's tokens, then each generated token). So a
// condition resolves once per prompt to KeyBlocks (layers + absolute key positions), and every forward or
// continuation turns them into the model interface's BlockSpecs with its own query positions here.

import type { BlockSpec } from '../models/types.js';

/** Image keys blocked in some layers: the prompt-dependent half of a BlockSpec. */
export interface KeyBlock {
  readonly layers: readonly number[];
  readonly keys: readonly number[];
}

/**
 * Per-layer key sets -> blocks, layers with the same set sharing one (the decoder folds several specs on one layer
 * into a dense mask, so this keeps one spec per layer). Keys are sorted and deduplicated; empty sets give no block.
 */
export function keyBlocksByLayer(perLayer: Iterable<{ readonly layer: number; readonly keys: Iterable<number> }>): KeyBlock[] {
  const groups = new Map<string, { layers: number[]; keys: number[] }>();
  for (const { layer, keys } of perLayer) {
    const sorted = [...new Set(keys)].sort((a, b) => a - b);
    if (sorted.length === 0) continue;
    const id = sorted.join(',');
    const g = groups.get(id);
    if (g) g.layers.push(layer);
    else groups.set(id, { layers: [layer], keys: sorted });
  }
  return [...groups.values()];
}

/** The BlockSpecs of one call: each block's keys hidden from every one of `queries` in the block's layers. */
export function blockSpecsFor(blocks: readonly KeyBlock[], queries: readonly number[]): BlockSpec[] {
  if (queries.length === 0) return [];
  return blocks.filter((b) => b.layers.length > 0 && b.keys.length > 0).map((b) => ({ layers: b.layers, queries, keys: b.keys }));
}
