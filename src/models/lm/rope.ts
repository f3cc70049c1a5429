// Rotary position embeddings computed in JS from explicit position ids, exactly as HF's default RoPE does in
// float32 (inv_freq = 1 / theta^(2i/d), freq = inv_freq * pos, cos/sin of the float32 freq). Left padding,
// packed sequences that restart at 0 and (later) M-RoPE are just different position ids.

import { f32, type Tensor } from '../../tensor/tensor.js';

const fr = Math.fround;

export function inverseFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = fr(1 / fr(Math.pow(theta, fr((2 * i) / headDim))));
  return inv;
}

/**
 * cos/sin tables in HF's rotate-half layout (each frequency used for dims i and i + d/2).
 * positionIds: [batch][pos]. Returns cos, sin [batch, pos, dHead].
 */
export function ropeTables(positionIds: readonly (readonly number[])[], headDim: number, theta: number): { cos: Tensor<'float32'>; sin: Tensor<'float32'> } {
  const inv = inverseFrequencies(headDim, theta);
  const half = headDim / 2;
  const B = positionIds.length;
  const S = positionIds[0]?.length ?? 0;
  const cos = new Float32Array(B * S * headDim);
  const sin = new Float32Array(B * S * headDim);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const p = positionIds[b][s];
      const base = (b * S + s) * headDim;
      for (let i = 0; i < half; i++) {
        const f = fr(inv[i] * p);
        const c = Math.cos(f);
        const sn = Math.sin(f);
        cos[base + i] = c; cos[base + half + i] = c;
        sin[base + i] = sn; sin[base + half + i] = sn;
      }
    }
  }
  return { cos: f32([B, S, headDim], cos), sin: f32([B, S, headDim], sin) };
}

/**
 * M-RoPE tables (HF apply_multimodal_rotary_pos_emb): frequency i uses the position of axis a(i), where the
 * frequencies 0..dHead/2-1 are cut into `section` = [t, h, w] sizes (the same cut for both halves).
 * positionIds: [3][batch][pos] (t, h, w). Returns cos, sin [batch, pos, dHead].
 */
export function mropeTables(positionIds: readonly (readonly (readonly number[])[])[], headDim: number, theta: number, section: readonly number[]): { cos: Tensor<'float32'>; sin: Tensor<'float32'> } {
  const half = headDim / 2;
  if (section.reduce((a, b) => a + b, 0) !== half) throw new Error(`mrope_section [${section.join(', ')}] must sum to dHead/2 = ${half}`);
  if (positionIds.length !== section.length) throw new Error(`M-RoPE needs ${section.length} position axes, got ${positionIds.length}`);
  const axisOf = new Int32Array(half);
  let i0 = 0;
  section.forEach((n, a) => { axisOf.fill(a, i0, i0 + n); i0 += n; });
  const inv = inverseFrequencies(headDim, theta);
  const B = positionIds[0].length;
  const S = positionIds[0][0]?.length ?? 0;
  const cos = new Float32Array(B * S * headDim);
  const sin = new Float32Array(B * S * headDim);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const base = (b * S + s) * headDim;
      for (let i = 0; i < half; i++) {
        const f = fr(inv[i] * positionIds[axisOf[i]][b][s]);
        const c = Math.cos(f);
        const sn = Math.sin(f);
        cos[base + i] = c; cos[base + half + i] = c;
        sin[base + i] = sn; sin[base + half + i] = sn;
      }
    }
  }
  return { cos: f32([B, S, headDim], cos), sin: f32([B, S, headDim], sin) };
}
