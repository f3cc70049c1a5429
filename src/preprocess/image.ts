// Decoded images as the HF processors see them after PIL's `Image.open(...).convert("RGB")`:
// uint8 [height, width, 3], no EXIF rotation, no colour management, alpha DROPPED (not composited).
//
// PNG goes through fast-png so every PIL mode rule can be honoured exactly (palette, sub-byte grey, 16-bit);
// JPEG / WebP / GIF / TIFF go through sharp (libvips) with the embedded ICC profile ignored, as PIL does.
// CMYK and YCCK JPEGs: libjpeg gives PIL's CMYK samples (Adobe-inverted, YCCK converted); sharp would then apply a
// colour profile, so the raw CMYK samples are taken instead and converted with PIL's arithmetic (cmykToRgb).
// Headers are checked against the file first (util/image-bounds): no buffer is sized from a size the file cannot hold.

import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { decode as decodePng, type DecodedPng } from 'fast-png';
import { errorMessage, KvlensInputError } from '../util/errors.js';
import { checkPngBeforeDecode, readJpegHeader } from '../util/image-bounds.js';
import { limit } from '../util/limits.js';

/** A packed RGB image: data is [height, width, 3] uint8, row-major. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export function rgbImage(width: number, height: number, data?: Uint8Array): RgbImage {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new KvlensInputError(`image size must be positive integers, got ${width}x${height}`);
  }
  const d = data ?? new Uint8Array(width * height * 3);
  if (d.length !== width * height * 3) throw new KvlensInputError(`RGB data has ${d.length} bytes, expected ${width}*${height}*3`);
  return { width, height, data: d };
}

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff';
export const SUPPORTED_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp', 'gif', 'tiff'];

/** Identify the container by its magic bytes (never by file extension). */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  const b = bytes;
  const ascii = (o: number, s: string) => [...s].every((c, i) => b[o + i] === c.charCodeAt(0));
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, 'PNG\r\n\x1a\n')) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 12 && ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'webp';
  if (b.length >= 6 && (ascii(0, 'GIF87a') || ascii(0, 'GIF89a'))) return 'gif';
  if (b.length >= 4 && (ascii(0, 'II*\0') || ascii(0, 'MM\0*'))) return 'tiff';
  return undefined;
}

/** Unpack 1/2/4-bit samples (rows padded to whole bytes) to one byte per sample. */
function unpackSubByte(packed: Uint8Array, samplesPerRow: number, rows: number, depth: number): Uint8Array {
  const out = new Uint8Array(samplesPerRow * rows);
  const rowBytes = Math.ceil((samplesPerRow * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < samplesPerRow; x++) {
      const bit = x * depth;
      out[y * samplesPerRow + x] = (packed[y * rowBytes + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

/**
 * PIL's view of a PNG, converted to RGB:
 * - palette (P): palette colours (tRNS ignored by convert("RGB"));
 * - grey 1/2/4-bit: PIL unpacks to L scaled to 0..255 (v * 255 / (2^d - 1));
 * - 16-bit grey: PIL mode I, and I -> RGB CLIPS to 0..255 (not a rescale: most 16-bit greys turn white);
 * - other 16-bit modes (RGB, RGBA, LA): PIL keeps the most significant byte;
 * - alpha channels are dropped.
 */
function pngToRgb(png: DecodedPng): RgbImage {
  const { width, height, channels, depth } = png;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  if (png.palette) {
    const idx = depth < 8 ? unpackSubByte(png.data as Uint8Array, width, height, depth) : (png.data as Uint8Array);
    for (let i = 0; i < n; i++) {
      const c = png.palette[idx[i]] ?? [0, 0, 0];
      out[3 * i] = c[0]; out[3 * i + 1] = c[1]; out[3 * i + 2] = c[2];
    }
    return { width, height, data: out };
  }
  let sample: (v: number) => number;
  let src: ArrayLike<number> = png.data;
  if (depth < 8) {
    src = unpackSubByte(png.data as Uint8Array, width * channels, height, depth);
    const scale = 255 / ((1 << depth) - 1);
    sample = (v) => v * scale;
  } else if (depth === 16) {
    sample = channels === 1 ? (v) => Math.min(v, 255) : (v) => v >> 8;
  } else {
    sample = (v) => v;
  }
  const grey = channels <= 2;
  for (let i = 0; i < n; i++) {
    const base = i * channels;
    if (grey) {
      const v = sample(src[base]);
      out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v;
    } else {
      out[3 * i] = sample(src[base]); out[3 * i + 1] = sample(src[base + 1]); out[3 * i + 2] = sample(src[base + 2]);
    }
  }
  return { width, height, data: out };
}

/** sharp's raw output (1..4 channels, 8-bit) -> RGB with alpha dropped and grey replicated. */
function rawToRgb(raw: Uint8Array, width: number, height: number, channels: number): RgbImage {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  const grey = channels <= 2;
  for (let i = 0; i < n; i++) {
    const b = i * channels;
    if (grey) {
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = raw[b];
    } else {
      out[3 * i] = raw[b]; out[3 * i + 1] = raw[b + 1]; out[3 * i + 2] = raw[b + 2];
    }
  }
  return { width, height, data: out };
}

/** Decode image bytes to RGB like PIL convert("RGB"). `name` (a path or label) is used in error messages. */
export async function decodeImage(bytes: Uint8Array, name = '<image bytes>'): Promise<RgbImage> {
  const format = sniffFormat(bytes);
  if (!format) {
    throw new KvlensInputError(`unsupported or unrecognised image format (supported: ${SUPPORTED_FORMATS.join(', ')})`, name);
  }
  if (format === 'png') {
    checkPngBeforeDecode(bytes, name);
    let png: DecodedPng;
    try {
      png = decodePng(bytes, { checkCrc: true });
    } catch (e) {
      throw new KvlensInputError(`corrupt or truncated PNG (${(e as Error).message})`, name);
    }
    if (!(png.width > 0 && png.height > 0) || png.data.length < png.width * png.height * png.channels * (png.depth >= 8 ? 1 : 0)) {
      throw new KvlensInputError('corrupt or truncated PNG (pixel data shorter than the header says)', name);
    }
    return pngToRgb(png);
  }
  const cmyk = format === 'jpeg' && readJpegHeader(bytes, name).components === 4;
  try {
    const input = sharp(bytes, { ignoreIcc: true, failOn: 'truncated', autoOrient: false, limitInputPixels: limit('IMAGE_PIXELS') });
    if (cmyk) {
      const { data, info } = await input.pipelineColourspace('cmyk').toColourspace('cmyk').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      if (info.channels !== 4) throw new Error(`CMYK JPEG decoded to ${info.channels} channels`);
      return cmykToRgb(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height);
    }
    const { data, info } = await input.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return rawToRgb(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height, info.channels);
  } catch (e) {
    throw new KvlensInputError(`corrupt or truncated ${format.toUpperCase()} (${errorMessage(e).split('\n')[0]})`, name);
  }
}

/**
 * PIL's CMYK -> RGB (Convert.c cmyk2rgb, no colour management): with nk = 255 - K, each channel is
 * nk - round(C * nk / 255), the rounding done as PIL's MULDIV255 ((t + (t >> 8)) >> 8 with t = C * nk + 128).
 * Real black (K = 255) is 0 whatever C, M, Y are.
 */
export function cmykToRgb(cmyk: Uint8Array, width: number, height: number): RgbImage {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const nk = 255 - cmyk[4 * i + 3];
    for (let c = 0; c < 3; c++) {
      const t = cmyk[4 * i + c] * nk + 128;
      out[3 * i + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return { width, height, data: out };
}

/** Read and decode an image file. */
export async function loadImage(path: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new KvlensInputError(`cannot read image file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  return decodeImage(bytes, path);
}

/** Crop [y0, y1) x [x0, x1) out of an image (clamped to it). */
export function cropImage(img: RgbImage, x0: number, y0: number, x1: number, y1: number): RgbImage {
  const w = x1 - x0;
  const h = y1 - y0;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    out.set(img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + w) * 3), y * w * 3);
  }
  return { width: w, height: h, data: out };
}

/** numpy.pad(constant 0) of an RGB image. */
export function padImage(img: RgbImage, top: number, bottom: number, left: number, right: number): RgbImage {
  const w = img.width + left + right;
  const h = img.height + top + bottom;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < img.height; y++) {
    out.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((y + top) * w + left) * 3);
  }
  return { width: w, height: h, data: out };
}
