// Shared test inputs: the generated tiny LLaVA-OneVision checkpoint and deterministic PNG images of varied sizes
// (so base and high-res grids differ between images), drawn with sharp from raw RGB.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeLlavaOnevisionCheckpoint } from '../../src/models/synthetic/llava-onevision.js';
import { mulberry32 } from '../../src/util/random.js';

export function tinyModel(): string {
  return writeLlavaOnevisionCheckpoint(mkdtempSync(join(tmpdir(), 'kvlens-extract-model-')));
}

/** Image i: a smooth gradient plus a coloured rectangle, size varying with i (some square, some wide, some tall). */
export function imageSize(i: number): { width: number; height: number } {
  const sizes = [[56, 56], [90, 40], [40, 100], [120, 70], [64, 64], [150, 60], [70, 130], [33, 47]];
  const [width, height] = sizes[i % sizes.length];
  return { width: width + (i % 3), height: height + ((i * 7) % 5) };
}

export async function writeImages(dir: string, n: number, opts: { sub?: boolean; size?: (i: number) => { width: number; height: number } } = {}): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const rels: string[] = [];
  for (let i = 0; i < n; i++) {
    const { width, height } = (opts.size ?? imageSize)(i);
    const rnd = mulberry32(1000 + i);
    const data = Buffer.alloc(width * height * 3);
    const [x0, y0] = [Math.floor(rnd() * width * 0.5), Math.floor(rnd() * height * 0.5)];
    const colour = [rnd() * 255, rnd() * 255, rnd() * 255];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = (y * width + x) * 3;
        const inside = x >= x0 && x < x0 + width / 3 && y >= y0 && y < y0 + height / 3;
        for (let c = 0; c < 3; c++) data[o + c] = inside ? colour[c] : Math.floor(((x * (c + 1) + y * (3 - c)) * 255) / (width + height) / 2 + rnd() * 20);
      }
    }
    const rel = opts.sub && i % 2 ? `sub/img-${String(i).padStart(3, '0')}.png` : `img-${String(i).padStart(3, '0')}.png`;
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), await sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer());
    rels.push(rel);
  }
  return rels.sort();
}
