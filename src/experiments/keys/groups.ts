// The high-resolution view's key variance per grid shape (keys on native-resolution images).
//
// An anyres model gives a native-resolution image a high-res grid chosen from its aspect ratio (LLaVA-OneVision
// anyres_max_9, LLaVA-NeXT's pinpoints), so a benchmark's images have several grid shapes. A position (row, col) of a
// 3x5 grid is not the same token as (row, col) of a 4x4 grid, so each shape is its own group: its own per-position
// Welford state over the images that have that shape, flagged against the run's one τ. A benchmark image is then
// blocked from the group of its own shape (blocking.ts flaggedKeyBlocksViews), never from another shape's flags.
//
// Each group resumes from its own state file `<state>.highres-grid.<rows>x<cols>` whose image list is the group's own
// images in accumulation order; on resume the groups together must cover exactly the images the main state has seen.

import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { TapTensor, ViewTokens } from '../../store/gather.js';
import { KvlensInputError } from '../../util/errors.js';
import { KeyVarianceState } from './state.js';

export const GROUPED_VIEW = 'highres';

export const gridKey = (g: { rows: number; cols: number }) => `${g.rows}x${g.cols}`;

const SUFFIX = `.${GROUPED_VIEW}-grid.`;
const groupPath = (state: string, key: string) => `${state}${SUFFIX}${key}`;

export class GridGroups {
  private readonly groups = new Map<string, { state: KeyVarianceState; ids: string[] }>();

  private constructor(private readonly tap: string, private readonly layers: readonly number[], private readonly path?: string) {}

  /**
   * The groups of a run whose main state has seen the first `done` images of `ids`: loaded from their state files
   * (every `<path>.highres-grid.<r>x<c>` beside `path`), or empty when starting over.
   */
  static open(tap: string, layers: readonly number[], path: string | undefined, ids: readonly string[], done: number): GridGroups {
    const g = new GridGroups(tap, layers, path);
    const files = path && existsSync(dirname(path) || '.')
      ? readdirSync(dirname(path) || '.').filter((f) => f.startsWith(basename(path) + SUFFIX) && /^\d+x\d+$/.test(f.slice(basename(path).length + SUFFIX.length)))
      : [];
    const seen = new Set<string>();
    for (const f of files) {
      const file = join(dirname(path!), f);
      const state = KeyVarianceState.load(file);
      const want = [...layers].sort((a, b) => a - b).join(',');
      const have = [...state.layers.keys()].sort((a, b) => a - b).join(',');
      if (state.meta.tap !== tap || state.meta.view !== GROUPED_VIEW || have !== want || !state.complete) {
        throw new KvlensInputError(`this grid-group state is not of this run (${state.meta.tap} ${state.meta.view}, layers [${have}], complete ${state.complete}); delete the key-variance state files to start over`, file);
      }
      for (const id of state.meta.imageIds) {
        if (seen.has(id)) throw new KvlensInputError(`image "${id}" is in two grid groups; delete the key-variance state files to start over`, file);
        seen.add(id);
      }
      g.groups.set(gridKey(state.meta.shape), { state, ids: state.meta.imageIds as string[] });
    }
    const expected = ids.slice(0, done);
    if (seen.size !== expected.length || expected.some((id) => !seen.has(id))) {
      throw new KvlensInputError(`the grid-group states cover ${seen.size} images but the main state has seen ${done} of this image list; delete the key-variance state files to start over`, path ?? 'state');
    }
    return g;
  }

  /** Add one image's keys (lm.{L}.attn.k of every layer, from one live forward) to the group of its high-res grid. */
  add(imageId: string, taps: ReadonlyMap<string, TapTensor>, view: ViewTokens, accumulate: (s: KeyVarianceState, t: ReadonlyMap<string, TapTensor>, v: ViewTokens) => void): void {
    const key = gridKey(view);
    let g = this.groups.get(key);
    if (!g) {
      const t = taps.get(this.tap.replace('{L}', String(this.layers[0])))!; // [1, kvHead, pos, dHead]
      const ids: string[] = [];
      g = { ids, state: new KeyVarianceState({ tap: this.tap, view: GROUPED_VIEW, shape: { rows: view.rows, cols: view.cols, heads: t.shape[1], headDim: t.shape[3] }, imageIds: ids }, this.layers) };
      this.groups.set(key, g);
    }
    g.ids.push(imageId); // the state's image list grows with its count, so a saved group is always complete
    accumulate(g.state, taps, view);
  }

  save(): void {
    if (!this.path) return;
    for (const [key, g] of this.groups) g.state.save(groupPath(this.path, key));
  }

  /** Every group, most images first (ties by shape), so the result lists the groups a benchmark most likely uses first. */
  states(): KeyVarianceState[] {
    return [...this.groups.entries()]
      .sort(([ka, a], [kb, b]) => b.ids.length - a.ids.length || (ka < kb ? -1 : ka > kb ? 1 : 0))
      .map(([, g]) => g.state);
  }
}
