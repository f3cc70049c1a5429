// Minimal BMP codec for MSRC ground truth: uncompressed 24/32-bit and 8-bit palette BMPs, rows bottom-up (positive
// height) or top-down (negative height). Output is RGB bytes [height * width * 3], row-major from the top.
import { KvlensInputError } from '../util/errors.js';

export interface RgbImage { width: number; height: number; data: Uint8Array } // data: [height * width * 3]

export function decodeBmp(bytes: Uint8Array, path: string): RgbImage {
  const fail = (why: string): never => { throw new KvlensInputError(`not a readable BMP (${why})`, path); };
  if (bytes.length < 54 || bytes[0] !== 0x42 || bytes[1] !== 0x4d) fail('missing "BM" signature or header');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pixelOffset = dv.getUint32(10, true);
  const headerSize = dv.getUint32(14, true);
  if (headerSize < 40) fail(`unsupported header size ${headerSize}`);
  const width = dv.getInt32(18, true);
  const rawHeight = dv.getInt32(22, true);
  const bpp = dv.getUint16(28, true);
  const compression = dv.getUint32(30, true);
  // BI_RGB (0) only; BI_BITFIELDS (3) with 32 bpp is read as BGRA order, the common layout.
  if (!(compression === 0 || (compression === 3 && bpp === 32))) fail(`compression ${compression} is not supported`);
  if (![8, 24, 32].includes(bpp)) fail(`${bpp} bits per pixel is not supported`);
  if (width <= 0 || rawHeight === 0) fail(`bad size ${width}x${rawHeight}`);
  const height = Math.abs(rawHeight);
  const bottomUp = rawHeight > 0;
  const rowBytes = Math.ceil((width * bpp) / 32) * 4;
  if (pixelOffset + rowBytes * height > bytes.length) fail(`pixel data truncated (${bytes.length} bytes, need ${pixelOffset + rowBytes * height})`);
  let palette: Uint8Array | null = null;
  if (bpp === 8) {
    const colours = dv.getUint32(46, true) || 256;
    palette = bytes.subarray(14 + headerSize, 14 + headerSize + colours * 4); // BGRx entries
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const srcRow = pixelOffset + (bottomUp ? height - 1 - y : y) * rowBytes;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (palette) {
        const p = bytes[srcRow + x] * 4;
        if (p + 2 >= palette.length) fail(`palette index ${bytes[srcRow + x]} beyond the palette`);
        out[o] = palette[p + 2]; out[o + 1] = palette[p + 1]; out[o + 2] = palette[p];
      } else {
        const s = srcRow + x * (bpp / 8);
        out[o] = bytes[s + 2]; out[o + 1] = bytes[s + 1]; out[o + 2] = bytes[s];
      }
    }
  }
  return { width, height, data: out };
}

/** Encodes RGB as a 24-bit bottom-up BMP, the layout of the MSRC-v2 files. */
export function encodeBmp24(img: RgbImage): Uint8Array {
  const rowBytes = Math.ceil((img.width * 24) / 32) * 4;
  const size = 54 + rowBytes * img.height;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out[0] = 0x42; out[1] = 0x4d;
  dv.setUint32(2, size, true);
  dv.setUint32(10, 54, true);
  dv.setUint32(14, 40, true);
  dv.setInt32(18, img.width, true);
  dv.setInt32(22, img.height, true);
  dv.setUint16(26, 1, true);
  dv.setUint16(28, 24, true);
  dv.setUint32(34, rowBytes * img.height, true);
  for (let y = 0; y < img.height; y++) {
    const dst = 54 + (img.height - 1 - y) * rowBytes;
    for (let x = 0; x < img.width; x++) {
      const s = (y * img.width + x) * 3;
      out[dst + x * 3] = img.data[s + 2];
      out[dst + x * 3 + 1] = img.data[s + 1];
      out[dst + x * 3 + 2] = img.data[s];
    }
  }
  return out;
}
