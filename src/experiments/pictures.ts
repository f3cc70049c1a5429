// The pictures a run writes for the viewer and the report (issue 16): sample PNGs under <run>/samples/ listed in
// samples/index.json, drawn on the photo itself. Per-image JSON (masks/, attention/) is written by the callers through
// src/results/rundir.ts; this file only draws and catalogues.
//
// Every picture is the photo (resized to PICTURE_SIDE on its longer side) with a token grid painted over it; a grid
// cell covers its share of the photo (rows x cols stretched over the whole image, as the viewer draws it).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { resolveImage, type ImageInput } from '../preprocess/processor.js';
import type { RgbImage } from '../preprocess/image.js';
import { readJsonValidated, writeFileAtomic } from '../results/io.js';
import { RUN_FILES, writeRun, type SampleEntry } from '../results/rundir.js';
import { SampleIndexSchema } from '../results/schema.js';

/** How many pictures a run draws (experiment files: `pictures: {images, questions}`; 0 turns a kind off). */
export const PicturesSchema = z.object({
  /** flow: images whose per-layer probe masks (+ ground truth, + text->image attention) are written, with a sample PNG each. */
  images: z.number().int().min(0).default(4),
  /** blocking / under-utilisation: questions whose head-averaged text->image attention per layer is written. */
  questions: z.number().int().min(0).default(2),
}).strict();
export type PicturesConfig = z.infer<typeof PicturesSchema>;
export const DEFAULT_PICTURES: PicturesConfig = { images: 4, questions: 2 };

/** Longer side of a sample picture's photo, px. */
export const PICTURE_SIDE = 256;

export type Rgba = readonly [number, number, number, number];

/** A grid painted over a photo: colour (with alpha 0..1) per token, row-major. */
export interface GridLayer {
  readonly rows: number;
  readonly cols: number;
  readonly color: (token: number) => Rgba | undefined;
}

/** The photo scaled to fit PICTURE_SIDE (aspect kept), as raw RGB. */
export async function photoThumb(image: ImageInput, side = PICTURE_SIDE): Promise<RgbImage> {
  const img = await resolveImage(image, 0);
  const scale = Math.min(1, side / Math.max(img.width, img.height));
  const width = Math.max(1, Math.round(img.width * scale));
  const height = Math.max(1, Math.round(img.height * scale));
  const data = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).resize(width, height, { fit: 'fill' }).raw().toBuffer();
  return { width, height, data: new Uint8Array(data) };
}

/** The photo with a grid layer alpha-blended over it (new buffer). */
export function paintOver(photo: RgbImage, layer: GridLayer): RgbImage {
  const out = Uint8Array.from(photo.data);
  for (let y = 0; y < photo.height; y++) {
    const r = Math.min(layer.rows - 1, Math.floor((y * layer.rows) / photo.height));
    for (let x = 0; x < photo.width; x++) {
      const c = Math.min(layer.cols - 1, Math.floor((x * layer.cols) / photo.width));
      const col = layer.color(r * layer.cols + c);
      if (!col || col[3] <= 0) continue;
      const i = (y * photo.width + x) * 3;
      const a = Math.min(1, col[3]);
      for (let k = 0; k < 3; k++) out[i + k] = Math.round(out[i + k] * (1 - a) + col[k] * a);
    }
  }
  return { width: photo.width, height: photo.height, data: out };
}

/** Panels side by side (same height; a 4 px white gap) as one PNG. */
export async function panelsPng(panels: readonly RgbImage[]): Promise<Buffer> {
  const gap = 4;
  const height = Math.max(...panels.map((p) => p.height));
  const width = panels.reduce((a, p) => a + p.width, 0) + gap * (panels.length - 1);
  const data = new Uint8Array(width * height * 3).fill(255);
  let x0 = 0;
  for (const p of panels) {
    for (let y = 0; y < p.height; y++) data.set(p.data.subarray(y * p.width * 3, (y + 1) * p.width * 3), (y * width + x0) * 3);
    x0 += p.width + gap;
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** Viridis-like ramp (dark blue -> green -> yellow) for scalar maps, t in 0..1. */
export function ramp(t: number): [number, number, number] {
  const stops: [number, number, number][] = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((k) => Math.round(stops[i][k] + (stops[i + 1][k] - stops[i][k]) * f)) as [number, number, number];
}

/** A file name inside samples/ from free text (ids may hold '/', '.', spaces). */
export function sampleFileName(...parts: readonly string[]): string {
  return `${parts.join('-').replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 120) || 'sample'}.png`;
}

/**
 * Write PNGs into <run>/samples and add them to samples/index.json (entries with the same file are replaced, others
 * kept: flow, keys and blocking each add their own in one run directory).
 */
export async function addSamples(runDir: string, pictures: ReadonlyArray<{ entry: SampleEntry; png: Buffer }>): Promise<void> {
  if (pictures.length === 0) return;
  for (const p of pictures) await writeFileAtomic(join(runDir, RUN_FILES.samplesDir, p.entry.file), p.png);
  const indexPath = join(runDir, RUN_FILES.samplesIndex);
  const old = existsSync(indexPath) ? (await readJsonValidated(indexPath, SampleIndexSchema)).samples : [];
  const files = new Set(pictures.map((p) => p.entry.file));
  await writeRun.samplesIndex(runDir, { samples: [...old.filter((s) => !files.has(s.file)), ...pictures.map((p) => p.entry)] });
}
