// Drawing primitives for synthetic datasets. Every shape is a polygon rasterised with the same pycocotools-compatible
// rasteriser the COCO loader uses, so a shape's written mask equals the mask a loader decodes from its polygon.
import sharp from 'sharp';
import { decodeSegmentation } from '../coco-mask.js';
import type { LabelGrid, Point } from '../types.js';
import type { Rng } from './prng.js';

export const SHAPE_KINDS = ['square', 'circle', 'triangle', 'diamond', 'hexagon', 'star', 'cross', 'pentagon'] as const;
export type ShapeKind = (typeof SHAPE_KINDS)[number];

export interface Shape { kind: ShapeKind; cx: number; cy: number; r: number; rotation: number }

/** Polygon vertices of a shape (pixel coordinates), in drawing order. */
export function shapePolygon(s: Shape): Point[] {
  const ring = (n: number, radius: (i: number) => number, phase = 0): Point[] =>
    Array.from({ length: n }, (_, i) => {
      const a = s.rotation + phase + (2 * Math.PI * i) / n;
      return [s.cx + radius(i) * Math.cos(a), s.cy + radius(i) * Math.sin(a)];
    });
  switch (s.kind) {
    case 'square': return ring(4, () => s.r, Math.PI / 4);
    case 'circle': return ring(24, () => s.r);
    case 'triangle': return ring(3, () => s.r, -Math.PI / 2);
    case 'diamond': return ring(4, (i) => (i % 2 ? s.r * 0.6 : s.r));
    case 'hexagon': return ring(6, () => s.r);
    case 'pentagon': return ring(5, () => s.r, -Math.PI / 2);
    case 'star': return ring(10, (i) => (i % 2 ? s.r * 0.45 : s.r), -Math.PI / 2);
    case 'cross': {
      const w = s.r * 0.35;
      const pts: Point[] = [[-w, -s.r], [w, -s.r], [w, -w], [s.r, -w], [s.r, w], [w, w], [w, s.r], [-w, s.r], [-w, w], [-s.r, w], [-s.r, -w], [-w, -w]];
      const c = Math.cos(s.rotation), sn = Math.sin(s.rotation);
      return pts.map(([x, y]) => [s.cx + x * c - y * sn, s.cy + x * sn + y * c]);
    }
  }
}

export function flatPolygon(pts: Point[]): number[] {
  return pts.flatMap(([x, y]) => [Math.round(x * 100) / 100, Math.round(y * 100) / 100]);
}

/** 0/1 mask of a shape at the given image size (the exact COCO polygon rasterisation). */
export function shapeMask(s: Shape, width: number, height: number): LabelGrid {
  return decodeSegmentation([flatPolygon(shapePolygon(s))], height, width, 'synthetic shape');
}

export function randomShape(rng: Rng, width: number, height: number, kind?: ShapeKind): Shape {
  const r = rng.int(Math.round(Math.min(width, height) * 0.12), Math.round(Math.min(width, height) * 0.22));
  return { kind: kind ?? rng.pick(SHAPE_KINDS), cx: rng.int(r + 1, width - r - 2), cy: rng.int(r + 1, height - r - 2), r, rotation: rng.next() * Math.PI };
}

/** An RGB canvas [height * width * 3] plus a label grid painted in step with it. */
export class Canvas {
  readonly rgb: Uint8Array;
  readonly labels: LabelGrid;
  constructor(readonly width: number, readonly height: number, rng: Rng, background: [number, number, number], labelBytes: 1 | 2 = 1) {
    this.rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) {
      const n = rng.int(-12, 12); // mild texture so images are not flat
      for (let c = 0; c < 3; c++) this.rgb[3 * i + c] = clamp(background[c] + n);
    }
    const data = labelBytes === 2 ? new Uint16Array(width * height) : new Uint8Array(width * height);
    this.labels = { width, height, data };
  }

  /** Paints mask pixels with a colour and a label (later shapes occlude earlier ones). */
  paint(mask: LabelGrid, colour: [number, number, number], label: number): void {
    for (let i = 0; i < mask.data.length; i++) {
      if (!mask.data[i]) continue;
      this.rgb.set(colour, 3 * i);
      this.labels.data[i] = label;
    }
  }

  /** Paints a horizontal band [y0, y1) (road, sky...). */
  band(y0: number, y1: number, colour: [number, number, number], label: number): void {
    for (let y = Math.max(0, y0); y < Math.min(this.height, y1); y++) {
      for (let x = 0; x < this.width; x++) { const i = y * this.width + x; this.rgb.set(colour, 3 * i); this.labels.data[i] = label; }
    }
  }

  /** Marks object pixels that touch a different label as `ignore` (the VOC-style boundary band). */
  ignoreBoundaries(ignore: number): void {
    const { width: w, height: h } = this;
    const src = this.labels.data.slice();
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        if (src[i] === 0) continue;
        const nb = [x > 0 ? src[i - 1] : src[i], x < w - 1 ? src[i + 1] : src[i], y > 0 ? src[i - w] : src[i], y < h - 1 ? src[i + w] : src[i]];
        if (nb.some((v) => v !== src[i])) this.labels.data[i] = ignore;
      }
    }
  }

  async jpeg(): Promise<Uint8Array> {
    return encodeJpeg(this.rgb, this.width, this.height);
  }
}

export async function encodeJpeg(rgb: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  const buf = await sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

export async function encodePngRgb(rgb: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  const buf = await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function clamp(v: number): number { return v < 0 ? 0 : v > 255 ? 255 : Math.round(v); }

/** A distinct, saturated colour per integer id (for class-coloured objects). */
export function colourFor(id: number): [number, number, number] {
  const h = (id * 137.508) % 360;
  const f = (n: number) => { const k = (n + h / 30) % 12; return 255 * (0.5 - 0.45 * Math.max(-1, Math.min(k - 3, 9 - k, 1))); };
  return [clamp(f(0)), clamp(f(8)), clamp(f(4))];
}
