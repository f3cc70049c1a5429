// The photo under the viewer's overlays: the store's recorded source image, decoded exactly as the extractor decodes
// it (src/preprocess/image.ts: no EXIF rotation, CMYK as PIL does), scaled to fit a box and re-encoded as JPEG. Only
// paths the store itself records are read, and only as images: nothing else on disk is reachable through this route.
import { isAbsolute, resolve } from 'node:path';
import sharp from 'sharp';
import { loadImage } from '../preprocess/image.js';
import { LruCache } from './features.js';

export const PHOTO_MAX_SIDE = 1024;

export interface PhotoResult { readonly jpeg: Buffer; readonly width: number; readonly height: number }

export class PhotoCache {
  private readonly cache: LruCache<PhotoResult>;

  constructor(size = 128) {
    this.cache = new LruCache<PhotoResult>(size);
  }

  /**
   * `source` as the store recorded it (absolute, or relative to `base`: the directory the viewer was started on and
   * the current directory are tried). Throws KvlensInputError naming the file when it is gone or not an image.
   */
  async get(source: string, maxSide: number, bases: readonly string[]): Promise<PhotoResult> {
    const key = `${maxSide}\u0000${source}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const candidates = isAbsolute(source) ? [source] : bases.map((b) => resolve(b, source));
    let lastError: unknown;
    for (const path of candidates) {
      try {
        const img = await loadImage(path);
        const scale = Math.min(1, maxSide / Math.max(img.width, img.height));
        const width = Math.max(1, Math.round(img.width * scale));
        const height = Math.max(1, Math.round(img.height * scale));
        const jpeg = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
          .resize(width, height, { fit: 'fill', kernel: 'lanczos3' }).jpeg({ quality: 88 }).toBuffer();
        const out = { jpeg, width, height };
        this.cache.set(key, out);
        return out;
      } catch (e) {
        lastError = e;
      }
    }
    throw lastError;
  }
}
