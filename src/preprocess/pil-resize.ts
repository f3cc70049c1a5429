// Pillow's `Image.resize` for 8-bit images (Resample.c, ImagingResample), reproduced bit for bit:
// separable convolution, horizontal pass first (its output rounded and clipped to uint8), then vertical; the filter
// is widened by the scale factor when downscaling (antialias); coefficients are normalised in double precision
// and then quantised to fixed point with PRECISION_BITS = 32 - 8 - 2 = 22; each output starts at half an ulp
// (1 << 21) and is arithmetic-shifted and clipped to 0..255.
// HF image processors call exactly this via `to_pil_image(...).resize((w, h), resample)` on uint8 arrays.

import type { RgbImage } from './image.js';

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

export type ResampleFilter = 'bicubic' | 'bilinear' | 'nearest';

/** PIL resample enum values as stored in preprocessor_config.json `resample`. */
export function filterFromPilCode(code: number): ResampleFilter {
  if (code === 3) return 'bicubic';
  if (code === 2) return 'bilinear';
  if (code === 0) return 'nearest';
  throw new Error(`PIL resample code ${code} is not supported (0 nearest, 2 bilinear, 3 bicubic)`);
}

interface Filter {
  readonly support: number;
  readonly weight: (x: number) => number;
}

// Keys' cubic with a = -0.5, as Pillow's bicubic_filter.
const BICUBIC_A = -0.5;
const FILTERS: Record<Exclude<ResampleFilter, 'nearest'>, Filter> = {
  bicubic: {
    support: 2,
    weight: (x) => {
      if (x < 0) x = -x;
      if (x < 1) return ((BICUBIC_A + 2) * x - (BICUBIC_A + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * BICUBIC_A;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    weight: (x) => {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
};

/** Fixed-point taps of one axis: output i reads `count[i]` inputs from `first[i]` with weights kk[i*ksize ..]. */
interface AxisCoeffs {
  readonly ksize: number;
  readonly first: Int32Array;
  readonly count: Int32Array;
  readonly kk: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the full input range [0, inSize). */
function axisCoeffs(inSize: number, outSize: number, filter: Filter): AxisCoeffs {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const kk = new Int32Array(outSize * ksize);
  const weights = new Float64Array(ksize);
  const invFilterScale = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // C casts (int) truncate toward zero
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * invFilterScale);
      weights[x] = w;
      sum += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? weights[x] / sum : weights[x];
      kk[i * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    first[i] = xmin;
    count[i] = xmax;
  }
  return { ksize, first, count, kk };
}

function clip8(acc: number): number {
  const v = Math.floor(acc / ONE); // arithmetic >> PRECISION_BITS
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Horizontal pass over interleaved 8-bit pixels [h, inW, ch] -> [h, outW, ch]. */
function resampleHorizontal(src: Uint8Array, h: number, inW: number, ch: number, outW: number, c: AxisCoeffs): Uint8Array {
  const out = new Uint8Array(h * outW * ch);
  for (let y = 0; y < h; y++) {
    const rowIn = y * inW * ch;
    const rowOut = y * outW * ch;
    for (let xo = 0; xo < outW; xo++) {
      const k0 = xo * c.ksize;
      const x0 = c.first[xo];
      const n = c.count[xo];
      for (let b = 0; b < ch; b++) {
        let acc = HALF;
        for (let t = 0; t < n; t++) acc += src[rowIn + (x0 + t) * ch + b] * c.kk[k0 + t];
        out[rowOut + xo * ch + b] = clip8(acc);
      }
    }
  }
  return out;
}

/** Vertical pass [inH, w, ch] -> [outH, w, ch]. */
function resampleVertical(src: Uint8Array, inH: number, w: number, ch: number, outH: number, c: AxisCoeffs): Uint8Array {
  void inH;
  const out = new Uint8Array(outH * w * ch);
  const rowLen = w * ch;
  for (let yo = 0; yo < outH; yo++) {
    const k0 = yo * c.ksize;
    const y0 = c.first[yo];
    const n = c.count[yo];
    for (let i = 0; i < rowLen; i++) {
      let acc = HALF;
      for (let t = 0; t < n; t++) acc += src[(y0 + t) * rowLen + i] * c.kk[k0 + t];
      out[yo * rowLen + i] = clip8(acc);
    }
  }
  return out;
}

/** Pillow NEAREST (used by PIL for modes 1/P): source index = floor((i + 0.5) * in / out). */
function resizeNearest(src: Uint8Array, inW: number, inH: number, ch: number, outW: number, outH: number): Uint8Array {
  const out = new Uint8Array(outW * outH * ch);
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(Math.floor(((y + 0.5) * inH) / outH), inH - 1);
    for (let x = 0; x < outW; x++) {
      const sx = Math.min(Math.floor(((x + 0.5) * inW) / outW), inW - 1);
      for (let b = 0; b < ch; b++) out[(y * outW + x) * ch + b] = src[(sy * inW + sx) * ch + b];
    }
  }
  return out;
}

/**
 * Resize interleaved 8-bit pixels [inH, inW, channels] to [outH, outW, channels] as Pillow does.
 * Same size returns a copy (Image.resize short-circuits); an axis whose size does not change is not filtered.
 */
export function pilResize8(src: Uint8Array, inW: number, inH: number, channels: number, outW: number, outH: number, filter: ResampleFilter): Uint8Array {
  if (src.length !== inW * inH * channels) throw new Error(`pilResize8: ${src.length} bytes for ${inH}x${inW}x${channels}`);
  if (!(outW > 0 && outH > 0)) throw new Error(`pilResize8: bad output size ${outH}x${outW}`);
  if (inW === outW && inH === outH) return src.slice();
  if (filter === 'nearest') return resizeNearest(src, inW, inH, channels, outW, outH);
  const f = FILTERS[filter];
  let buf = src;
  if (outW !== inW) buf = resampleHorizontal(buf, inH, inW, channels, outW, axisCoeffs(inW, outW, f));
  if (outH !== inH) buf = resampleVertical(buf, inH, outW, channels, outH, axisCoeffs(inH, outH, f));
  return buf;
}

/** Resize an RGB image with Pillow's arithmetic. */
export function resizeRgb(img: RgbImage, width: number, height: number, filter: ResampleFilter = 'bicubic'): RgbImage {
  return { width, height, data: pilResize8(img.data, img.width, img.height, 3, width, height, filter) };
}
