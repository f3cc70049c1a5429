// Bilinear resize with the exact semantics of torch.nn.functional.interpolate(mode='bilinear',
// align_corners=False) given an output size (no scale_factor), as LLaVA-OneVision uses to shrink large
// anyres grids. torch computes indices and weights in float32 on the CPU; we mirror that with Math.fround
// so the result matches to the last bit or two rather than merely "closely".

const f = Math.fround;

interface AxisWeights {
  readonly i0: Int32Array;
  readonly i1: Int32Array;
  readonly w0: Float32Array;
  readonly w1: Float32Array;
}

/** Source indices and weights along one axis: src = max(scale * (dst + 0.5) - 0.5, 0), scale = in / out. */
function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = f(inSize / outSize);
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w0 = new Float32Array(outSize);
  const w1 = new Float32Array(outSize);
  for (let d = 0; d < outSize; d++) {
    // C++ promotes (dst + 0.5) to double, so the product is taken in double and then stored as float.
    const src = f(Math.max(scale * (d + 0.5) - 0.5, 0));
    const lo = Math.min(Math.floor(src), inSize - 1);
    i0[d] = lo;
    i1[d] = lo < inSize - 1 ? lo + 1 : lo;
    const l1 = Math.min(Math.max(f(src - lo), 0), 1);
    w1[d] = l1;
    w0[d] = f(1 - l1);
  }
  return { i0, i1, w0, w1 };
}

/**
 * Resize a channels-last grid [inH, inW, channels] to [outH, outW, channels].
 * Per output pixel: (x[y0,x0]*wx0 + x[y0,x1]*wx1)*wy0 + (x[y1,x0]*wx0 + x[y1,x1]*wx1)*wy1, each step in float32,
 * the order torch's separable CPU kernel accumulates in (height is the outer interpolated axis).
 */
export function resizeBilinear(src: Float32Array, inH: number, inW: number, channels: number, outH: number, outW: number): Float32Array {
  if (src.length !== inH * inW * channels) {
    throw new Error(`resizeBilinear: source has ${src.length} values, [${inH}, ${inW}, ${channels}] needs ${inH * inW * channels}`);
  }
  if (outH < 1 || outW < 1) throw new Error(`resizeBilinear: output size ${outH}x${outW} is empty`);
  const ys = axisWeights(inH, outH);
  const xs = axisWeights(inW, outW);
  const out = new Float32Array(outH * outW * channels);
  for (let oy = 0; oy < outH; oy++) {
    const r0 = ys.i0[oy] * inW;
    const r1 = ys.i1[oy] * inW;
    const wy0 = ys.w0[oy];
    const wy1 = ys.w1[oy];
    for (let ox = 0; ox < outW; ox++) {
      const a = (r0 + xs.i0[ox]) * channels;
      const b = (r0 + xs.i1[ox]) * channels;
      const c = (r1 + xs.i0[ox]) * channels;
      const d = (r1 + xs.i1[ox]) * channels;
      const wx0 = xs.w0[ox];
      const wx1 = xs.w1[ox];
      const o = (oy * outW + ox) * channels;
      for (let ch = 0; ch < channels; ch++) {
        const top = f(f(src[a + ch] * wx0) + f(src[b + ch] * wx1));
        const bottom = f(f(src[c + ch] * wx0) + f(src[d + ch] * wx1));
        out[o + ch] = f(f(top * wy0) + f(bottom * wy1));
      }
    }
  }
  return out;
}
