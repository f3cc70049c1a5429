// Label PNGs decoded to raw sample values the way `np.array(Image.open(p))` sees them: palette images give their
// INDICES (never the palette colours), grey images their values; ImageNet-S RGB masks give class = R + 256*G.
import { decode, encode } from 'fast-png';
import type { DecodedPng } from 'fast-png';
import { KvlensInputError } from '../util/errors.js';
import { checkPngBeforeDecode } from '../util/image-bounds.js';
import type { LabelGrid } from './types.js';

function decodePngOrThrow(bytes: Uint8Array, path: string): DecodedPng {
  checkPngBeforeDecode(bytes, path);
  try {
    return decode(bytes);
  } catch (e) {
    throw new KvlensInputError(`not a readable PNG (${(e as Error).message})`, path);
  }
}

/** fast-png keeps sub-byte samples packed (rows padded to whole bytes); unpack them to one byte per pixel. */
function unpackSubByte(packed: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = packed[y * rowBytes + (bit >> 3)];
      out[y * width + x] = (byte >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

function singleChannel(png: DecodedPng): Uint8Array | Uint16Array {
  if (png.depth < 8) return unpackSubByte(png.data as Uint8Array, png.width, png.height, png.depth);
  return png.data as Uint8Array | Uint16Array;
}

/**
 * Decodes a class/object-index PNG (VOC, SegmentationClassAug, DAVIS, SPair, BDD) to its stored values.
 * Palette PNG -> palette indices; greyscale -> values (16-bit stays Uint16). Colour PNGs are refused: their colours
 * are not labels (use the colormaps only for display).
 */
export function decodeLabelPng(bytes: Uint8Array, path: string): LabelGrid {
  const png = decodePngOrThrow(bytes, path);
  if (png.channels !== 1) {
    throw new KvlensInputError(
      `expected a palette or single-channel label PNG, got ${png.channels} channels (an RGB colour rendering of the labels?)`, path);
  }
  return { width: png.width, height: png.height, data: singleChannel(png) };
}

/** ImageNet-S mask: RGB(A) PNG with class = R + 256*G computed in integers (0 = other, 1000 = ignore). */
export function decodeImageNetSMask(bytes: Uint8Array, path: string): LabelGrid {
  const png = decodePngOrThrow(bytes, path);
  const n = png.width * png.height;
  const out = new Uint16Array(n);
  if (png.channels === 1 && png.palette) {
    const idx = singleChannel(png);
    for (let i = 0; i < n; i++) {
      const c = png.palette[idx[i]];
      if (!c) throw new KvlensInputError(`palette index ${idx[i]} beyond the palette`, path);
      out[i] = c[0] + 256 * c[1];
    }
  } else if (png.channels >= 3 && png.depth === 8) {
    const d = png.data;
    const ch = png.channels;
    for (let i = 0; i < n; i++) out[i] = d[i * ch] + 256 * d[i * ch + 1];
  } else {
    throw new KvlensInputError(`expected an 8-bit RGB ImageNet-S mask (class = R + 256*G), got ${png.channels} channel(s) at ${png.depth} bits`, path);
  }
  return { width: png.width, height: png.height, data: out };
}

/** The PASCAL VOC / DAVIS colormap: index bits spread over the high bits of R, G, B. */
export function vocPalette(size = 256): [number, number, number][] {
  const pal: [number, number, number][] = [];
  for (let i = 0; i < size; i++) {
    let r = 0, g = 0, b = 0, c = i;
    for (let j = 0; j < 8; j++) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    pal.push([r, g, b]);
  }
  return pal;
}

/** Writes indices as an 8-bit palette PNG (mode P), the format of VOC and DAVIS annotations. */
export function encodePalettePng(grid: LabelGrid, palette: [number, number, number][] = vocPalette()): Uint8Array {
  const data = new Uint8Array(grid.width * grid.height);
  for (let i = 0; i < data.length; i++) {
    const v = grid.data[i];
    if (v > 255 || v >= palette.length) throw new KvlensInputError(`label ${v} does not fit a ${palette.length}-colour palette`);
    data[i] = v;
  }
  return encode({ width: grid.width, height: grid.height, data, depth: 8, channels: 1, palette });
}

/** Writes labels as a greyscale PNG (8-bit, or 16-bit when a value exceeds 255). */
export function encodeGrayPng(grid: LabelGrid): Uint8Array {
  let max = 0;
  for (let i = 0; i < grid.data.length; i++) max = Math.max(max, grid.data[i]);
  const depth = max > 255 ? 16 : 8;
  const data = depth === 16 ? Uint16Array.from(grid.data) : Uint8Array.from(grid.data);
  return encode({ width: grid.width, height: grid.height, data, depth, channels: 1 });
}

/** Writes class ids the ImageNet-S way: pixel = (c % 256, floor(c / 256), 0). */
export function encodeImageNetSMask(grid: LabelGrid): Uint8Array {
  const n = grid.width * grid.height;
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const c = grid.data[i];
    data[i * 3] = c % 256;
    data[i * 3 + 1] = Math.floor(c / 256);
  }
  return encode({ width: grid.width, height: grid.height, data, depth: 8, channels: 3 });
}
