// Index bookkeeping of Qwen2-VL / Qwen2.5-VL, computed by kvlens from input_ids and image_grid_thw:
//   - M-RoPE position ids of the prompt (HF get_rope_index): text advances all three axes together; an image's
//     tokens get (t, row, col) offsets from the position after the preceding text; text after an image continues
//     at (largest id so far) + 1. rope_delta = max + 1 - length, so a decode step sits at cache length + delta.
//   - the ViT's 2-D rotary angles per patch (rot_pos_emb), in pixel_values (merge-unit) order;
//   - Qwen2.5-VL's attention windows (get_window_index) and the group id of every patch for masks.
// pixel_values order: per image, per frame, merged units row-major, the merge x merge patches of a unit consecutive.

import { inverseFrequencies } from '../lm/rope.js';
import { KvlensInputError } from '../../util/errors.js';
import type { QwenVisionSpec, Qwen2VlConfig } from './config.js';

/** One image's grid in patches: temporal, height, width (a row of image_grid_thw). */
export interface GridThw {
  readonly t: number;
  readonly h: number;
  readonly w: number;
}

export function gridsFrom(data: ArrayLike<number | bigint>, where = 'image_grid_thw'): GridThw[] {
  const v = Array.from(data, Number);
  if (v.length % 3) throw new KvlensInputError(`expected (t, h, w) rows, got ${v.length} values`, where);
  const out: GridThw[] = [];
  for (let i = 0; i < v.length; i += 3) out.push({ t: v[i], h: v[i + 1], w: v[i + 2] });
  return out;
}

export function checkGrids(grids: readonly GridThw[], merge: number, where = 'image_grid_thw'): void {
  grids.forEach((g, i) => {
    if (!(g.t > 0 && g.h > 0 && g.w > 0) || g.h % merge || g.w % merge) {
      throw new KvlensInputError(`image ${i}: grid (${g.t}, ${g.h}, ${g.w}) must be positive with h and w multiples of spatial_merge_size ${merge}`, where);
    }
  });
}

/** Patches per image and merged tokens per image. */
export function patchCount(g: GridThw): number { return g.t * g.h * g.w; }
export function tokenCount(g: GridThw, merge: number): number { return (g.t * g.h * g.w) / (merge * merge); }

/** (frame, row, col) of every patch of one image in pixel_values order. */
function patchCoords(g: GridThw, m: number): { t: Int32Array; row: Int32Array; col: Int32Array } {
  const n = patchCount(g);
  const t = new Int32Array(n), row = new Int32Array(n), col = new Int32Array(n);
  let p = 0;
  for (let f = 0; f < g.t; f++) {
    for (let ur = 0; ur < g.h / m; ur++) {
      for (let uc = 0; uc < g.w / m; uc++) {
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < m; j++, p++) { t[p] = f; row[p] = ur * m + i; col[p] = uc * m + j; }
        }
      }
    }
  }
  return { t, row, col };
}

/**
 * rot_pos_emb: per patch, angles [row * invFreq, col * invFreq] with invFreq of a (headDim/2)-dim rotary
 * embedding (theta 10000). Returns [nPatches, headDim/2] float32 and the cos/sin tables [nPatches, headDim] of
 * cat(angles, angles) used with rotate_half.
 */
export function visionRotary(grids: readonly GridThw[], spec: QwenVisionSpec): { angles: Float32Array; cos: Float32Array; sin: Float32Array } {
  const half = spec.headDim / 2;
  const inv = inverseFrequencies(half, 10000); // half/2 frequencies
  const q = inv.length;
  const n = grids.reduce((a, g) => a + patchCount(g), 0);
  const angles = new Float32Array(n * half);
  const cos = new Float32Array(n * spec.headDim);
  const sin = new Float32Array(n * spec.headDim);
  let p0 = 0;
  for (const g of grids) {
    const c = patchCoords(g, spec.mergeSize);
    for (let p = 0; p < c.row.length; p++) {
      const a = (p0 + p) * half;
      for (let i = 0; i < q; i++) {
        angles[a + i] = Math.fround(c.row[p] * inv[i]);
        angles[a + q + i] = Math.fround(c.col[p] * inv[i]);
      }
      const o = (p0 + p) * spec.headDim;
      for (let i = 0; i < half; i++) {
        const cv = Math.cos(angles[a + i]);
        const sv = Math.sin(angles[a + i]);
        cos[o + i] = cv; cos[o + half + i] = cv;
        sin[o + i] = sv; sin[o + half + i] = sv;
      }
    }
    p0 += c.row.length;
  }
  return { angles, cos, sin };
}

/** Attention group of every patch: the image it belongs to (full attention, cu_seqlens in HF). */
export function imageGroups(grids: readonly GridThw[]): BigInt64Array {
  const out = new BigInt64Array(grids.reduce((a, g) => a + patchCount(g), 0));
  let p = 0;
  grids.forEach((g, i) => { out.fill(BigInt(i), p, p + patchCount(g)); p += patchCount(g); });
  return out;
}

/**
 * Qwen2.5-VL window of every patch (pixel_values order): windows are windowUnits x windowUnits merged units,
 * per frame and per image, cut from the top-left (partial windows at the bottom/right edges).
 */
export function windowGroups(grids: readonly GridThw[], spec: QwenVisionSpec): BigInt64Array {
  const m = spec.mergeSize;
  const ws = spec.windowUnits;
  if (!ws) return imageGroups(grids);
  const out = new BigInt64Array(grids.reduce((a, g) => a + patchCount(g), 0));
  let base = 0;
  let p0 = 0;
  for (const g of grids) {
    const c = patchCoords(g, m);
    const nWc = Math.ceil(g.w / m / ws);
    const nWr = Math.ceil(g.h / m / ws);
    for (let p = 0; p < c.row.length; p++) {
      const ur = Math.floor(c.row[p] / m), uc = Math.floor(c.col[p] / m);
      out[p0 + p] = BigInt(base + (c.t[p] * nWr + Math.floor(ur / ws)) * nWc + Math.floor(uc / ws));
    }
    base += g.t * nWr * nWc;
    p0 += c.row.length;
  }
  return out;
}

/**
 * HF get_window_index, reproduced step by step: the order in which the tower visits merged units (window by
 * window, row-major inside a window) and the cumulative patch counts of the windows (after unique_consecutive,
 * which drops the empty windows HF's padding creates).
 */
export function windowIndex(grids: readonly GridThw[], spec: QwenVisionSpec): { windowIndex: number[]; cuWindowSeqlens: number[] } {
  const m = spec.mergeSize;
  const unitPatches = m * m;
  const order: number[] = [];
  const cu: number[] = [0];
  let idBase = 0;
  for (const g of grids) {
    const gh = g.h / m, gw = g.w / m;
    // Without windows (Qwen2-VL) one window covers a whole frame.
    const ws = spec.windowUnits ?? Math.max(gh, gw);
    const padH = ws - (gh % ws), padW = ws - (gw % ws);
    const nWr = (gh + padH) / ws, nWc = (gw + padW) / ws;
    for (let f = 0; f < g.t; f++) {
      for (let wr = 0; wr < nWr; wr++) {
        for (let wc = 0; wc < nWc; wc++) {
          let count = 0;
          for (let r = wr * ws; r < (wr + 1) * ws; r++) {
            for (let c = wc * ws; c < (wc + 1) * ws; c++) {
              if (r < gh && c < gw) { order.push(idBase + (f * gh + r) * gw + c); count++; }
            }
          }
          cu.push(cu[cu.length - 1] + count * unitPatches);
        }
      }
    }
    idBase += g.t * gh * gw;
  }
  return { windowIndex: order, cuWindowSeqlens: cu.filter((v, i) => i === 0 || v !== cu[i - 1]) };
}

/** Rows of x [nPatches, width] reordered into the tower's window order (row r = patch 4*windowIndex[r/4] + r%4). */
export function toWindowOrder(x: Float32Array, width: number, order: readonly number[], unitPatches: number): Float32Array {
  const out = new Float32Array(x.length);
  let r = 0;
  for (const u of order) {
    for (let j = 0; j < unitPatches; j++, r++) out.set(x.subarray((u * unitPatches + j) * width, (u * unitPatches + j + 1) * width), r * width);
  }
  return out;
}

export interface RopeIndex {
  /** [3][batch][pos]: temporal, height, width position ids */
  readonly positions: number[][][];
  /** per row: max(position) + 1 - length (decode position = cache length + delta) */
  readonly ropeDeltas: number[];
}

/**
 * HF get_rope_index for image prompts. `grids` are consumed in prompt order across the batch. `mask` (1 = real,
 * 0 = padding) restricts the computation to real tokens; padded slots get position 1 as in HF.
 */
export function ropeIndex(inputIds: readonly (readonly number[])[], grids: readonly GridThw[], cfg: Qwen2VlConfig, mask?: readonly (readonly number[])[]): RopeIndex {
  const m = cfg.vision.mergeSize;
  const B = inputIds.length;
  const S = inputIds[0]?.length ?? 0;
  const positions = [0, 1, 2].map(() => Array.from({ length: B }, () => new Array<number>(S).fill(1)));
  const ropeDeltas: number[] = [];
  let imageIdx = 0;
  for (let b = 0; b < B; b++) {
    const keep = inputIds[b].map((_, s) => (mask ? Number(mask[b][s]) === 1 : true));
    const ids = inputIds[b].filter((_, s) => keep[s]);
    if (ids.includes(cfg.videoTokenId)) throw new KvlensInputError(`row ${b}: video tokens (id ${cfg.videoTokenId}) are not supported`, 'input_ids');
    const t: number[] = [], h: number[] = [], w: number[] = [];
    let next = 0; // st_idx: largest id so far + 1
    let s = 0;
    const pushText = (n: number) => {
      for (let i = 0; i < n; i++) { t.push(next + i); h.push(next + i); w.push(next + i); }
      if (n) next += n;
    };
    while (s < ids.length) {
      const ed = ids.indexOf(cfg.imageTokenId, s);
      if (ed < 0) { pushText(ids.length - s); break; }
      pushText(ed - s);
      const g = grids[imageIdx++];
      if (!g) throw new KvlensInputError(`the prompt has more image runs than image_grid_thw rows (${grids.length})`, 'input_ids');
      const gh = g.h / m, gw = g.w / m;
      const n = g.t * gh * gw;
      for (let i = 0; i < n; i++) {
        if (ids[ed + i] !== cfg.imageTokenId) throw new KvlensInputError(`row ${b}: image ${imageIdx - 1} needs ${n} consecutive image tokens from position ${ed}, found ${i}`, 'input_ids');
      }
      let maxId = next - 1;
      for (let f = 0; f < g.t; f++) {
        // Qwen2.5-VL scales the temporal index by seconds per grid step, which is 0 for still images.
        const tf = cfg.variant === 'qwen2_5_vl' ? 0 : f;
        for (let r = 0; r < gh; r++) {
          for (let c = 0; c < gw; c++) {
            t.push(next + tf); h.push(next + r); w.push(next + c);
            maxId = Math.max(maxId, next + tf, next + r, next + c);
          }
        }
      }
      next = maxId + 1;
      s = ed + n;
    }
    let k = 0;
    for (let i = 0; i < S; i++) {
      if (!keep[i]) continue;
      positions[0][b][i] = t[k]; positions[1][b][i] = h[k]; positions[2][b][i] = w[k]; k++;
    }
    ropeDeltas.push(next - S); // HF subtracts the full row length (padding included)
  }
  if (imageIdx !== grids.length) throw new KvlensInputError(`image_grid_thw has ${grids.length} rows but the prompt holds ${imageIdx} images`, 'image_grid_thw');
  return { positions, ropeDeltas };
}
