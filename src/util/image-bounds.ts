// Image headers checked against the file before anything is decoded or sized from them. A 94-byte PNG may claim
// 16000 x 16000 pixels and a 255 KB one may inflate to 840 MB; both are refused here, naming the file:
// - every image: width x height within the IMAGE_PIXELS limit (PIL's decompression-bomb threshold);
// - PNG: the compressed pixel data (IDAT) can hold the declared image (deflate expands at most 1032:1), and it inflates
//   to no more than the declared image needs (checked with a bounded inflate before a full decoder sees it);
// - JPEG: the file is at least 1 byte per 65536 pixels (far below what any real JPEG, even arithmetic-coded, needs).
import { inflateSync } from 'node:zlib';
import { KvlensInputError } from './errors.js';
import { limit, limitError } from './limits.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** The most deflate can expand: 258-byte matches coded in ~2 bits (zlib's documented 1032:1). */
const DEFLATE_MAX_RATIO = 1032;
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

export interface PngHeader { width: number; height: number; depth: number; colorType: number; interlace: number; idatBytes: number; rawBytes: number }

export function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && PNG_SIGNATURE.every((v, i) => b[i] === v);
}

/** Filtered scanline bytes of a (possibly Adam7-interlaced) image: what the IDAT stream must inflate to. */
function pngRawBytes(width: number, height: number, bitsPerPixel: number, interlace: number): number {
  const rowBytes = (w: number) => (w === 0 ? 0 : 1 + Math.ceil((w * bitsPerPixel) / 8));
  if (interlace === 0) return height * rowBytes(width);
  const passes: Array<[number, number, number, number]> = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  let total = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const w = Math.max(0, Math.ceil((width - x0) / dx));
    const h = Math.max(0, Math.ceil((height - y0) / dy));
    if (w > 0 && h > 0) total += h * rowBytes(w);
  }
  return total;
}

/** Walks the PNG chunks (lengths checked against the file), returns the header and the total IDAT length. */
export function readPngHeader(bytes: Uint8Array, where: string): PngHeader {
  const fail = (why: string): never => { throw new KvlensInputError(`not a readable PNG (${why})`, where); };
  if (!isPng(bytes)) fail('missing PNG signature');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let header: Omit<PngHeader, 'idatBytes' | 'rawBytes'> | null = null;
  let idatBytes = 0;
  while (pos + 8 <= bytes.length) {
    const length = dv.getUint32(pos);
    const type = String.fromCharCode(bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]);
    if (length > bytes.length - pos - 12) fail(`chunk ${type} at byte offset ${pos} claims ${length} bytes, beyond the end of the file`);
    if (type === 'IHDR') {
      if (length < 13) fail('IHDR chunk shorter than 13 bytes');
      const width = dv.getUint32(pos + 8), height = dv.getUint32(pos + 12);
      const depth = bytes[pos + 16], colorType = bytes[pos + 17], interlace = bytes[pos + 20];
      if (width === 0 || height === 0) fail(`IHDR size ${width}x${height}`);
      if (CHANNELS[colorType] === undefined || ![1, 2, 4, 8, 16].includes(depth)) fail(`IHDR colour type ${colorType} with bit depth ${depth}`);
      header = { width, height, depth, colorType, interlace };
    } else if (type === 'IDAT') {
      idatBytes += length;
    } else if (type === 'IEND') {
      break;
    }
    pos += 12 + length;
  }
  if (!header) return fail('no IHDR chunk');
  const h = header as Omit<PngHeader, 'idatBytes' | 'rawBytes'>;
  checkPixelCount(h.width, h.height, where);
  const rawBytes = pngRawBytes(h.width, h.height, CHANNELS[h.colorType] * h.depth, h.interlace);
  if (idatBytes * DEFLATE_MAX_RATIO < rawBytes) {
    fail(`the header declares ${h.width}x${h.height} pixels (${rawBytes} bytes of scanlines) but the file holds only ${idatBytes} bytes of compressed pixel data, which cannot expand that far`);
  }
  return { ...h, idatBytes, rawBytes };
}

/**
 * readPngHeader plus a bounded inflate of the IDAT stream: refuses data that would inflate beyond the declared image
 * (a decompression bomb) before a decoder that inflates everything into memory sees it.
 */
export function checkPngBeforeDecode(bytes: Uint8Array, where: string): PngHeader {
  const header = readPngHeader(bytes, where);
  const parts: Uint8Array[] = [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let pos = 8; pos + 8 <= bytes.length;) {
    const length = dv.getUint32(pos);
    const type = String.fromCharCode(bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]);
    if (type === 'IDAT') parts.push(bytes.subarray(pos + 8, pos + 8 + length));
    if (type === 'IEND') break;
    pos += 12 + length;
  }
  try {
    inflateSync(Buffer.concat(parts), { maxOutputLength: header.rawBytes + 1, finishFlush: 2 /* Z_SYNC_FLUSH: tolerate a missing end */ });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      throw new KvlensInputError(`not a readable PNG (its pixel data inflates beyond the ${header.rawBytes} bytes that ${header.width}x${header.height} pixels need: a decompression bomb or a corrupt file)`, where);
    }
    // Other zlib errors are left to the decoder, which reports them in its own words.
  }
  return header;
}

/** Refuses an image whose pixel count is beyond the IMAGE_PIXELS limit (before any buffer is sized from it). */
export function checkPixelCount(width: number, height: number, where: string): void {
  if (width * height > limit('IMAGE_PIXELS')) throw limitError('IMAGE_PIXELS', `an image of ${width}x${height} pixels`, where);
}

/** A JPEG needs at least a bit per 8x8 block of its first scan; refuse files far too small for their declared size. */
export function checkJpegPlausible(fileBytes: number, width: number, height: number, where: string): void {
  checkPixelCount(width, height, where);
  if (fileBytes * 65536 < width * height) {
    throw new KvlensInputError(`not a readable JPEG (the header declares ${width}x${height} pixels but the file has only ${fileBytes} bytes)`, where);
  }
}

export interface JpegHeader {
  width: number;
  height: number;
  /** Colour components of the frame: 1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK. */
  components: number;
  /** The APP14 "Adobe" marker's transform (0 none/CMYK, 1 YCbCr, 2 YCCK), or null when the file has none. */
  adobeTransform: number | null;
}

/** Reads a JPEG's markers up to the first scan: frame size, component count, Adobe marker. Lengths checked. */
export function readJpegHeader(bytes: Uint8Array, where: string): JpegHeader {
  const fail = (why: string): never => { throw new KvlensInputError(`not a readable JPEG (${why})`, where); };
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) fail('missing SOI marker');
  let pos = 2;
  let frame: { width: number; height: number; components: number } | null = null;
  let adobeTransform: number | null = null;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) fail(`expected a marker at byte offset ${pos}`);
    const marker = bytes[pos + 1];
    if (marker === 0xff) { pos++; continue; } // fill byte
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { pos += 2; continue; }
    if (marker === 0xd9) break;
    const length = (bytes[pos + 2] << 8) | bytes[pos + 3];
    if (length < 2 || pos + 2 + length > bytes.length) fail(`segment 0xFF${marker.toString(16).toUpperCase()} at byte offset ${pos} runs past the end of the file`);
    const body = pos + 4;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (length < 8) fail(`frame header at byte offset ${pos} is too short`);
      frame = { height: (bytes[body + 1] << 8) | bytes[body + 2], width: (bytes[body + 3] << 8) | bytes[body + 4], components: bytes[body + 5] };
    } else if (marker === 0xee && length >= 14 && String.fromCharCode(...bytes.subarray(body, body + 5)) === 'Adobe') {
      adobeTransform = bytes[body + 11];
    } else if (marker === 0xda) {
      break;
    }
    pos += 2 + length;
  }
  if (!frame) return fail('no frame header (SOF) before the first scan');
  const f = frame as { width: number; height: number; components: number };
  if (f.width === 0 || f.height === 0) fail(`frame size ${f.width}x${f.height} (a DNL-sized height is not supported)`);
  checkJpegPlausible(bytes.length, f.width, f.height, where);
  return { ...f, adobeTransform };
}
