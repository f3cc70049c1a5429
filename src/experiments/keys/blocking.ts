// From flagged key positions on the canonical grid to the decoder's BlockSpec list for one prompt.
//
// Flagged positions are grid cells (p = row * cols + col) of one view ("base" or "highres") of the image grid the
// variance was computed on. A benchmark prompt places the image's tokens somewhere else in the sequence, with the
// question after it; its token map (processor.prepare(...).tokenMap) says which sequence position holds each cell.
// The blocked attention edges are: text queries after the image -> the flagged image keys, in the chosen layers,
// for every query head (BlockSpec has no head axis). Image-to-image attention is left intact.
//
// Layers with the same flagged set share one block (src/eval/blocks.ts, the one BlockSpec builder).

import { blockSpecsFor, keyBlocksByLayer, type KeyBlock } from '../../eval/blocks.js';
import type { BlockSpec } from '../../models/types.js';
import { viewGrid, viewGrids, type TokenMap } from '../../preprocess/token-map.js';
import type { ViewTokens } from '../../store/gather.js';
import { KvlensInputError, KvlensUsageError } from '../../util/errors.js';
import { Rng } from '../../util/random.js';

/** Flagged grid positions per layer, on one view's grid. */
export interface FlaggedKeys {
  readonly view: string;
  readonly grid: { readonly rows: number; readonly cols: number };
  readonly layers: ReadonlyArray<{ readonly layer: number; readonly positions: readonly number[] }>;
  /**
   * One grid group of a view computed per grid shape (keys on native-resolution images, groups.ts): an image of this
   * view is blocked from the set whose grid is its own; other shapes fall to gridMatch (flaggedKeyBlocksViews).
   */
  readonly grouped?: boolean;
}

/**
 * The control condition: per layer as many positions as flagged, drawn (seeded) from the positions NOT flagged in that
 * layer, so it blocks the same number of image keys but a different set. When a layer flags more than half the grid
 * the complement is too small; the draw then takes all of the complement and fills up from the flagged set.
 */
export function randomControl(flagged: FlaggedKeys, seed: number): FlaggedKeys {
  const P = flagged.grid.rows * flagged.grid.cols;
  const layers = flagged.layers.map(({ layer, positions }) => {
    const rng = new Rng((seed ^ Math.imul(layer + 1, 0x9e3779b1)) >>> 0);
    const isFlagged = new Uint8Array(P);
    for (const p of positions) isFlagged[p] = 1;
    const rest = Array.from({ length: P }, (_, p) => p).filter((p) => !isFlagged[p]);
    const k = positions.length;
    const picked = k <= rest.length ? rng.shuffle(rest).slice(0, k) : [...rest, ...rng.shuffle([...positions]).slice(0, k - rest.length)];
    return { layer, positions: picked.sort((a, b) => a - b) };
  });
  return { view: flagged.view, grid: flagged.grid, layers, ...(flagged.grouped ? { grouped: true } : {}) };
}

export type GridMatch = 'exact' | 'nearest';

/**
 * Flagged cells of the canonical grid -> cells of an image's grid. 'exact' needs the same grid; 'nearest' maps a
 * target cell to the canonical cell under its centre (for a benchmark image whose high-res grid differs), so the
 * blocked fraction of the image stays about the same.
 */
export function mapCells(positions: readonly number[], from: { rows: number; cols: number }, to: { rows: number; cols: number }, match: GridMatch): number[] {
  if (from.rows === to.rows && from.cols === to.cols) return [...positions];
  if (match === 'exact') {
    throw new KvlensInputError(
      `the prompt's image has a ${to.rows} x ${to.cols} grid but the input-agnostic keys were found on a ${from.rows} x ${from.cols} grid; ` +
      'evaluate at the same --resolution, block on the "base" view (fixed grid), or allow gridMatch "nearest"', 'blocking');
  }
  const set = new Uint8Array(from.rows * from.cols);
  for (const p of positions) set[p] = 1;
  const out: number[] = [];
  for (let r = 0; r < to.rows; r++) {
    const fr = Math.min(from.rows - 1, Math.floor(((r + 0.5) * from.rows) / to.rows));
    for (let c = 0; c < to.cols; c++) {
      const fc = Math.min(from.cols - 1, Math.floor(((c + 0.5) * from.cols) / to.cols));
      if (set[fr * from.cols + fc]) out.push(r * to.cols + c);
    }
  }
  return out;
}

export interface BlockSpecOptions {
  /** Query positions (absolute, in the current call). Default: every position after the last image token. */
  readonly queries?: readonly number[];
  /** Sequence length of the prompt (default: the token map's length). */
  readonly length?: number;
  /**
   * First position after the last image's tokens (all views and newlines), where the default queries start. The
   * token-map entry point knows it; with bare ViewTokens it must be given (a view's cells need not end the image).
   */
  readonly imageEnd?: number;
  readonly gridMatch?: GridMatch;
}

/**
 * The image keys `flagged` hides in one prompt, per layer: `images` is the prompt's per-image token positions for the
 * flagged view (viewGrids, or the store's / extractor's ViewTokens); every image's flagged cells are
 * blocked. Layers with no flagged position get no block.
 */
export function flaggedKeyBlocks(flagged: FlaggedKeys, images: readonly ViewTokens[], gridMatch: GridMatch = 'exact'): KeyBlock[] {
  if (images.length === 0) throw new KvlensUsageError('blockSpecs: the prompt has no image');
  return keyBlocksByLayer(flagged.layers.map(({ layer, positions }) => ({
    layer, keys: images.flatMap((v) => mapCells(positions, flagged.grid, v, gridMatch).map((cell) => v.positions[cell])),
  })));
}

/**
 * blockViews 'all': the image keys of one prompt whose (view, position) is flagged, for every view of `sets` (each
 * flagged from its own variance: base tile, high-resolution grid) and every image of the prompt that has that view
 * (viewGrid of the model's token map; an image without the view contributes nothing for it). Per layer the views'
 * keys are joined into one block.
 */
export function flaggedKeyBlocksViews(
  sets: readonly FlaggedKeys[], map: Pick<TokenMap, 'entries' | 'runs'>, gridMatch: GridMatch = 'exact',
  onFallback?: (e: { view: string; grid: { rows: number; cols: number }; from: { rows: number; cols: number } }) => void,
): KeyBlock[] {
  if (map.runs.length === 0) throw new KvlensUsageError('blockSpecs: the prompt has no image');
  const perLayer = new Map<number, number[]>();
  const add = (set: FlaggedKeys, v: ViewTokens) => {
    for (const { layer, positions } of set.layers) {
      const keys = perLayer.get(layer) ?? perLayer.set(layer, []).get(layer)!;
      for (const cell of mapCells(positions, set.grid, v, gridMatch)) keys.push(v.positions[cell]);
    }
  };
  for (const view of [...new Set(sets.map((s) => s.view))]) {
    const mine = sets.filter((s) => s.view === view);
    for (const r of map.runs) {
      const v = viewGrid(map, view, r.image);
      if (!v) continue;
      if (!mine.some((s) => s.grouped)) {
        for (const set of mine) add(set, v);
        continue;
      }
      // grouped view: the group of this image's own grid shape; an unseen shape falls to gridMatch
      const own = mine.find((s) => s.grid.rows === v.rows && s.grid.cols === v.cols);
      if (own) {
        add(own, v);
        continue;
      }
      const shapes = mine.map((s) => `${s.grid.rows}x${s.grid.cols}`).join(', ');
      if (gridMatch === 'exact') {
        throw new KvlensInputError(
          `the image's "${view}" grid is ${v.rows}x${v.cols}, a shape with no usable grid group in the key variance (groups: ${shapes}); ` +
          'gridMatch "exact" refuses to carry another shape\'s flags to it: compute the keys over more images of this shape (or lower minGroupImages), or allow gridMatch "nearest"', 'blocking');
      }
      const near = nearestGroup(mine, v);
      onFallback?.({ view, grid: { rows: v.rows, cols: v.cols }, from: near.grid });
      add(near, v);
    }
  }
  return keyBlocksByLayer([...perLayer].map(([layer, keys]) => ({ layer, keys })));
}

/**
 * gridMatch 'nearest' for a grid shape without a group: the group closest in aspect ratio (|log(cols/rows)| apart),
 * then in cell count, then the first listed (most images); its cells are carried by mapCells' centre rule.
 */
export function nearestGroup(groups: readonly FlaggedKeys[], to: { rows: number; cols: number }): FlaggedKeys {
  const aspect = (g: { rows: number; cols: number }) => Math.log(g.cols / g.rows);
  let best = groups[0];
  let bestKey = [Infinity, Infinity];
  for (const g of groups) {
    const key = [Math.abs(aspect(g.grid) - aspect(to)), Math.abs(g.grid.rows * g.grid.cols - to.rows * to.cols)];
    if (key[0] < bestKey[0] - 1e-12 || (Math.abs(key[0] - bestKey[0]) <= 1e-12 && key[1] < bestKey[1])) {
      best = g;
      bestKey = key;
    }
  }
  return best;
}

/** The BlockSpec list blocking `flagged` in one prompt (see flaggedKeyBlocks), for the given or default queries. */
export function blockSpecs(flagged: FlaggedKeys, images: readonly ViewTokens[], opts: BlockSpecOptions & { length: number }): BlockSpec[] {
  const blocks = flaggedKeyBlocks(flagged, images, opts.gridMatch);
  const lastKey = Math.max(...images.flatMap((v) => Array.from(v.positions)));
  let queries: number[];
  if (opts.queries) queries = [...opts.queries];
  else {
    if (opts.imageEnd === undefined) throw new KvlensUsageError('blockSpecs: give the queries, or imageEnd (the position after the image tokens)');
    if (opts.imageEnd <= lastKey) throw new KvlensUsageError(`blockSpecs: imageEnd ${opts.imageEnd} is not after the last image key ${lastKey}`);
    queries = Array.from({ length: Math.max(0, opts.length - opts.imageEnd) }, (_, i) => opts.imageEnd! + i);
  }
  if (queries.length === 0) throw new KvlensUsageError('blockSpecs: no query positions (the prompt ends with the image)');
  return blockSpecsFor(blocks, queries);
}

/** Convenience: block specs for a prompt prepared by the processor (its token map). */
export function blockSpecsForPrompt(flagged: FlaggedKeys, map: TokenMap, opts: BlockSpecOptions = {}): BlockSpec[] {
  const imageEnd = Math.max(...map.runs.map((r) => r.end));
  return blockSpecs(flagged, viewGrids(map, flagged.view), { imageEnd, ...opts, length: opts.length ?? map.length });
}

/** Total blocked image keys per layer (for benchmarks.json's blockedPositions and the report). */
export function blockedCount(flagged: FlaggedKeys, layers?: readonly number[]): number {
  return flagged.layers.filter((l) => !layers || layers.includes(l.layer)).reduce((a, l) => a + l.positions.length, 0);
}
