// Benchmark conditions: run unchanged ('none') or with text queries blocked from chosen image keys in chosen layers.
// Image-token positions differ per image (anyres grids), so keys are chosen relative to the image — every image
// token, positions of a view's grid (the key-variance convention p = row * cols + col, newlines excluded), or a
// function of the prompt's token map — and resolved to absolute sequence positions per prefilled prefix.

import { viewGrids, type TokenMap } from '../preprocess/token-map.js';
import { KvlensUsageError } from '../util/errors.js';
import type { KeyBlock } from './blocks.js';

export type ImageKeySelector =
  | 'all'
  | { readonly view: 'base' | 'highres'; readonly positions: readonly number[] }
  | ((map: TokenMap) => readonly number[]);

export interface ImageKeyBlock {
  readonly layers: readonly number[];
  readonly keys: ImageKeySelector;
}

export interface EvalCondition {
  /** 'none', 'block-input-agnostic', 'block-random', ... (results/benchmarks.json condition name). */
  readonly name: string;
  /** Blocked from every text query after the image(s), i.e. the question and every generated token. */
  readonly block?: readonly ImageKeyBlock[];
  /**
   * Or: the blocks for one prompt from its token map, e.g. experiments/keys' flaggedKeyBlocks. Only `layers` and `keys`
   * are read; the queries are always the text after the image, set per decoding call (src/eval/blocks.ts).
   */
  readonly blocksFor?: (map: TokenMap) => readonly KeyBlock[];
  /** Recorded in benchmarks.json (derived from `block` when absent). */
  readonly blockedLayers?: readonly number[];
  readonly blockedPositions?: number;
}

export function validateConditions(conditions: readonly EvalCondition[], lmLayers: number): void {
  if (conditions.length === 0) throw new KvlensUsageError('evaluateBenchmark: give at least one condition (e.g. { name: "none" })');
  const names = new Set<string>();
  for (const c of conditions) {
    if (!c.name) throw new KvlensUsageError('every condition needs a name');
    if (names.has(c.name)) throw new KvlensUsageError(`condition name "${c.name}" is used twice`);
    names.add(c.name);
    if (c.block && c.blocksFor) throw new KvlensUsageError(`condition "${c.name}": give block or blocksFor, not both`);
    for (const b of c.block ?? []) {
      for (const l of b.layers) {
        if (!Number.isInteger(l) || l < 0 || l >= lmLayers) throw new KvlensUsageError(`condition "${c.name}": layer ${l} is out of range 0..${lmLayers - 1}`);
      }
      if (typeof b.keys === 'object') {
        for (const p of b.keys.positions) if (!Number.isInteger(p) || p < 0) throw new KvlensUsageError(`condition "${c.name}": grid position ${p} must be a non-negative integer`);
      }
    }
  }
}

/** Absolute positions of image tokens in `map` selected by `sel`. */
export function selectImageKeys(map: TokenMap, sel: ImageKeySelector): number[] {
  if (sel === 'all') return map.runs.flatMap((r) => Array.from({ length: r.end - r.start }, (_, i) => r.start + i));
  if (typeof sel === 'function') return [...sel(map)];
  const out: number[] = [];
  viewGrids(map, sel.view).forEach((g, image) => {
    const cells = g.rows * g.cols;
    if (sel.view === 'base') {
      const bad = sel.positions.find((q) => q >= cells);
      if (bad !== undefined) throw new KvlensUsageError(`base-grid position ${bad} is outside the ${g.rows}x${g.cols} grid of image ${image}`);
    }
    // high-res grids differ between images: positions past this image's grid select nothing here
    for (const q of new Set(sel.positions)) if (q < cells) out.push(g.positions[q]);
  });
  return out.sort((x, y) => x - y);
}

/** A condition's blocks resolved on one prompt: absolute key positions per block. */
export function resolveBlocks(condition: EvalCondition, map: TokenMap, lmLayers: number): KeyBlock[] {
  const raw = condition.blocksFor
    ? condition.blocksFor(map).map((b) => ({ layers: [...b.layers], keys: [...b.keys] }))
    : (condition.block ?? []).map((b) => ({ layers: [...b.layers], keys: selectImageKeys(map, b.keys) }));
  for (const b of raw) {
    const badLayer = b.layers.find((l) => !Number.isInteger(l) || l < 0 || l >= lmLayers);
    if (badLayer !== undefined) throw new KvlensUsageError(`condition "${condition.name}": layer ${badLayer} is out of range 0..${lmLayers - 1}`);
    const badKey = b.keys.find((k) => !Number.isInteger(k) || map.entries[k] == null);
    if (badKey !== undefined) throw new KvlensUsageError(`condition "${condition.name}": key position ${badKey} is not an image token of the prompt`);
  }
  return raw.filter((b) => b.layers.length > 0 && b.keys.length > 0);
}

/** Layers a condition blocks anything in (for results/benchmarks.json). */
export function blockedLayers(condition: EvalCondition): number[] {
  if (condition.blockedLayers) return [...condition.blockedLayers];
  return [...new Set((condition.block ?? []).flatMap((b) => b.layers))].sort((a, b) => a - b);
}

/** Distinct grid positions blocked (union over blocks) when every block selects view positions; otherwise undefined. */
export function blockedGridPositions(condition: EvalCondition): number | undefined {
  if (condition.blockedPositions !== undefined) return condition.blockedPositions;
  const blocks = condition.block ?? [];
  if (blocks.length === 0 || blocks.some((b) => typeof b.keys !== 'object')) return undefined;
  const union = new Set<string>();
  for (const b of blocks) {
    const sel = b.keys as { view: string; positions: readonly number[] };
    for (const p of sel.positions) union.add(`${sel.view}:${p}`);
  }
  return union.size;
}
