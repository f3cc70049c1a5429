// The resumable, mergeable state of a key-variance run: one Welford state per layer over one ordered image list.
//
// Saved as a safetensors file (float64 tensors "layer.{L}.mean" [P, D] and "layer.{L}.m2" [P, heads]) whose metadata
// holds the grid, the view, the ordered image ids and how many of them each layer has consumed. A store-driven run
// goes a layer at a time, so after a crash some layers are complete and one is partial: each resumes at its own count.
// Shard runs over disjoint image lists merge with Chan's formula once every layer is complete.

import { existsSync } from 'node:fs';
import { readAllTensors, readSafetensorsHeader, writeSafetensors } from '../../tensor/safetensors.js';
import { tensor } from '../../tensor/tensor.js';
import { KvlensInputError, KvlensUsageError } from '../../util/errors.js';
import { PositionWelford, type KeyGridShape } from './variance.js';

export const STATE_FORMAT = 'kvlens-key-variance-state';
const STATE_VERSION = '1';

export interface KeyStateMeta {
  /** Key tap pattern, e.g. lm.{L}.attn.k. */
  readonly tap: string;
  /** Store / token-map view the grid belongs to ("base", "highres"). */
  readonly view: string;
  readonly shape: KeyGridShape;
  /** Every image this state covers (or will cover, for a partial layer), in accumulation order. */
  readonly imageIds: readonly string[];
}

export class KeyVarianceState {
  readonly layers = new Map<number, PositionWelford>();

  constructor(readonly meta: KeyStateMeta, layers: readonly number[]) {
    for (const l of layers) this.layers.set(l, new PositionWelford(meta.shape));
  }

  layer(l: number): PositionWelford {
    const w = this.layers.get(l);
    if (!w) throw new KvlensUsageError(`the key-variance state has no layer ${l}; it has [${[...this.layers.keys()].join(', ')}]`);
    return w;
  }

  /** True when every layer has consumed every listed image. */
  get complete(): boolean {
    return [...this.layers.values()].every((w) => w.n === this.meta.imageIds.length);
  }

  /** Combine a state over a disjoint image list (another shard of the same run). */
  merge(other: KeyVarianceState): KeyVarianceState {
    const a = this.meta;
    const b = other.meta;
    if (a.tap !== b.tap || a.view !== b.view) throw new KvlensUsageError(`cannot merge key statistics of ${b.tap} (${b.view}) into ${a.tap} (${a.view})`);
    const la = [...this.layers.keys()].sort((x, y) => x - y).join(',');
    const lb = [...other.layers.keys()].sort((x, y) => x - y).join(',');
    if (la !== lb) throw new KvlensUsageError(`cannot merge key statistics of layers [${lb}] into layers [${la}]`);
    if (!this.complete || !other.complete) throw new KvlensUsageError('only complete key-variance states can be merged (finish or resume each shard first)');
    const mine = new Set(a.imageIds);
    const dup = b.imageIds.find((id) => mine.has(id));
    if (dup !== undefined) throw new KvlensUsageError(`cannot merge key statistics that both include image "${dup}" (it would count twice)`);
    const out = new KeyVarianceState({ ...a, imageIds: [...a.imageIds, ...b.imageIds] }, [...this.layers.keys()]);
    for (const [l, w] of this.layers) {
      const m = w.clone();
      m.merge(other.layer(l)); // shape mismatch is refused here
      out.layers.set(l, m);
    }
    return out;
  }

  /** Write atomically (temp file + rename): a crash mid-save leaves the previous state intact. */
  save(path: string): void {
    const tensors: Record<string, ReturnType<typeof tensor>> = {};
    const { rows, cols, heads, headDim } = this.meta.shape;
    const P = rows * cols;
    const counts: Record<string, number> = {};
    for (const [l, w] of this.layers) {
      tensors[`layer.${l}.mean`] = tensor('float64', [P, heads * headDim], w.mean);
      tensors[`layer.${l}.m2`] = tensor('float64', [P, heads], w.m2);
      counts[String(l)] = w.n;
    }
    writeSafetensors(path, tensors, {
      format: STATE_FORMAT, version: STATE_VERSION, tap: this.meta.tap, view: this.meta.view,
      shape: JSON.stringify(this.meta.shape), imageIds: JSON.stringify(this.meta.imageIds), counts: JSON.stringify(counts),
    });
  }

  static load(path: string): KeyVarianceState {
    if (!existsSync(path)) throw new KvlensInputError('no key-variance state file', path);
    const md = readSafetensorsHeader(path).metadata ?? {};
    if (md.format !== STATE_FORMAT) throw new KvlensInputError(`not a key-variance state (metadata format ${JSON.stringify(md.format)}, expected ${STATE_FORMAT})`, path);
    if (md.version !== STATE_VERSION) throw new KvlensInputError(`key-variance state version ${md.version} is not supported (expected ${STATE_VERSION})`, path);
    let shape: KeyGridShape;
    let imageIds: string[];
    let counts: Record<string, number>;
    try {
      shape = JSON.parse(md.shape);
      imageIds = JSON.parse(md.imageIds);
      counts = JSON.parse(md.counts);
    } catch (e) {
      throw new KvlensInputError(`key-variance state metadata is not valid JSON (${(e as Error).message})`, path);
    }
    const dims = [shape?.rows, shape?.cols, shape?.heads, shape?.headDim];
    if (!dims.every((d) => Number.isInteger(d) && d > 0)) throw new KvlensInputError(`bad grid shape ${md.shape}`, path);
    if (!Array.isArray(imageIds) || !imageIds.every((id) => typeof id === 'string')) throw new KvlensInputError('imageIds must be a list of strings', path);
    const tensors = readAllTensors(path);
    const layers = Object.keys(counts).map(Number);
    const state = new KeyVarianceState({ tap: md.tap, view: md.view, shape, imageIds }, []);
    for (const l of layers) {
      const mean = tensors.get(`layer.${l}.mean`);
      const m2 = tensors.get(`layer.${l}.m2`);
      if (!mean || !m2 || mean.dtype !== 'float64' || m2.dtype !== 'float64') throw new KvlensInputError(`layer ${l}'s float64 mean/m2 tensors are missing`, path);
      const n = counts[String(l)];
      if (!Number.isInteger(n) || n < 0 || n > imageIds.length) throw new KvlensInputError(`layer ${l} claims ${n} images of ${imageIds.length}`, path);
      try {
        state.layers.set(l, new PositionWelford(shape, mean.data as Float64Array, m2.data as Float64Array, n));
      } catch (e) {
        throw new KvlensInputError((e as Error).message, path);
      }
    }
    return state;
  }
}
