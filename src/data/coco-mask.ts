// COCO mask decoding, following the algorithms of pycocotools' maskApi.c so masks match the Python tools pixel for
// pixel: RLE is column-major runs starting with zeros; the compressed string form is a 6-bit ASCII varint code
// (offset 48, counts after the second stored as differences to the count two places back); polygons are rasterised
// by walking the boundary at 5x resolution and keeping the column crossings (rleFrPoly), not by a scanline fill.
import { describeValue, KvlensInputError } from '../util/errors.js';
import { limit, limitError } from '../util/limits.js';
import type { CocoSegmentation, LabelGrid } from './types.js';

export interface Rle { height: number; width: number; counts: number[] }

/** Compressed RLE string -> counts (maskApi rleFrString). */
export function rleFromString(s: string, height: number, width: number): Rle {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = true;
    while (more) {
      if (p >= s.length) throw new KvlensInputError(`compressed RLE string ends inside a count (at character ${p})`, 'RLE counts');
      const c = s.charCodeAt(p) - 48;
      x += (c & 0x1f) * 2 ** (5 * k); // arithmetic, not <<: counts can exceed 2^30
      more = (c & 0x20) !== 0;
      p++; k++;
      if (!more && (c & 0x10)) x -= 2 ** (5 * k); // sign-extend
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return { height, width, counts };
}

/** Counts -> compressed RLE string (maskApi rleToString). */
export function rleToString(rle: Rle): string {
  let s = '';
  for (let i = 0; i < rle.counts.length; i++) {
    let x = rle.counts[i];
    if (i > 2) x -= rle.counts[i - 2];
    let more = true;
    while (more) {
      let c = ((x % 32) + 32) % 32; // low 5 bits of a two's-complement integer
      x = Math.floor(x / 32); // arithmetic shift right by 5
      more = (c & 0x10) ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** Polygon [x1,y1,x2,y2,...] -> RLE, a port of maskApi rleFrPoly (5x upsampled boundary walk). */
export function rleFromPolygon(xy: number[], height: number, width: number): Rle {
  const k = Math.floor(xy.length / 2);
  const scale = 5;
  const x: number[] = new Array(k + 1);
  const y: number[] = new Array(k + 1);
  for (let j = 0; j < k; j++) { x[j] = Math.trunc(scale * xy[2 * j] + 0.5); y[j] = Math.trunc(scale * xy[2 * j + 1] + 0.5); }
  x[k] = x[0]; y[k] = y[0];
  // Dense integer points along each edge (in the upsampled frame).
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const dx = Math.abs(xe - xs), dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) { [xs, xe] = [xe, xs]; [ys, ye] = [ye, ys]; }
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) { const t = flip ? dx - d : d; u.push(t + xs); v.push(Math.trunc(ys + s * t + 0.5)); }
    } else {
      for (let d = 0; d <= dy; d++) { const t = flip ? dy - d : d; v.push(t + ys); u.push(Math.trunc(xs + s * t + 0.5)); }
    }
  }
  // Keep the points where the boundary crosses a pixel-column centre, downsampled to the original grid.
  const a: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > width - 1) continue;
    let yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0; else if (yd > height) yd = height;
    yd = Math.ceil(yd);
    a.push(xd * height + yd);
  }
  a.push(height * width);
  a.sort((p, q) => p - q);
  let prev = 0;
  for (let j = 0; j < a.length; j++) { const t = a[j]; a[j] -= prev; prev = t; }
  // Zero-length runs merge the neighbouring runs of the same value.
  const b: number[] = [a[0]];
  let j = 1;
  while (j < a.length) {
    if (a[j] > 0) b.push(a[j++]);
    else { j++; if (j < a.length) b[b.length - 1] += a[j++]; }
  }
  return { height, width, counts: b };
}

/** RLE -> row-major 0/1 grid. The counts must cover exactly height*width pixels. */
export function rleDecode(rle: Rle, where = 'RLE'): LabelGrid {
  const { height: h, width: w } = rle;
  const total = rle.counts.reduce((s, c) => s + c, 0);
  if (total !== h * w || rle.counts.some((c) => c < 0)) {
    throw new KvlensInputError(`RLE counts sum to ${total}, expected height*width = ${h}*${w} = ${h * w}`, where);
  }
  const data = new Uint8Array(h * w);
  let i = 0; // column-major pixel index
  for (let r = 0; r < rle.counts.length; r++) {
    const n = rle.counts[r];
    if (r % 2 === 1) {
      for (let q = i; q < i + n; q++) data[(q % h) * w + Math.floor(q / h)] = 1;
    }
    i += n;
  }
  return { width: w, height: h, data };
}

/** Row-major 0/1 grid -> column-major RLE (maskApi rleEncode). */
export function rleEncode(grid: LabelGrid): Rle {
  const { width: w, height: h } = grid;
  const counts: number[] = [];
  let current = 0, run = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = grid.data[y * w + x] ? 1 : 0;
      if (v !== current) { counts.push(run); run = 0; current = v; }
      run++;
    }
  }
  counts.push(run);
  return { height: h, width: w, counts };
}

/**
 * How several polygons of one annotation combine. 'union': pycocotools annToMask (and refer's getMask followed by > 0).
 * 'exactly-once': LAVT's RefCOCO ground truth, which sums the polygon masks into uint8 and keeps pixels equal to 1, so
 * pixels covered by two overlapping parts (or by 257) are background.
 */
export type MultiPolygonRule = 'union' | 'exactly-once';

/** Mask sizes come from the image (checked against its file); refuse sizes no real image has before allocating. */
function checkMaskSize(height: number, width: number, where: string): void {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height <= 0 || width <= 0) {
    throw new KvlensInputError(`mask size must be positive integers, got ${describeValue(height)}x${describeValue(width)}`, where);
  }
  if (height * width > limit('IMAGE_PIXELS')) throw limitError('IMAGE_PIXELS', `mask size ${width}x${height}`, where);
}

/**
 * Validates a polygon before rasterising: numbers, even length >= 6, every vertex within one image size of the image
 * (a coordinate like 1e8 is corruption; walking its boundary would take minutes and gigabytes) and a boundary short
 * enough to walk (limit POLYGON_STEPS_PER_SIDE_PIXEL x (width + height) upsampled steps). Polygons that only stick out
 * a little, as real annotations do, are rasterised exactly as pycocotools does.
 */
function checkPolygon(poly: unknown, pi: number, height: number, width: number, where: string): number[] {
  if (!Array.isArray(poly) || poly.length < 6 || poly.length % 2 || poly.some((c) => typeof c !== 'number' || !Number.isFinite(c))) {
    throw new KvlensInputError(`segmentation polygon ${pi} must be an even-length list of >= 6 numbers`, where);
  }
  const margin = Math.max(width, height);
  let steps = 0;
  for (let j = 0; j < poly.length; j += 2) {
    const x = poly[j] as number, y = poly[j + 1] as number;
    if (x < -margin || x > width + margin || y < -margin || y > height + margin) {
      throw new KvlensInputError(`segmentation polygon ${pi} point ${j / 2} (${x}, ${y}) lies more than one image size outside the ${width}x${height} image`, where);
    }
    const k = (j + 2) % poly.length;
    steps += 5 * Math.max(Math.abs((poly[k] as number) - x), Math.abs((poly[k + 1] as number) - y)) + 2;
  }
  if (steps > limit('POLYGON_STEPS_PER_SIDE_PIXEL') * (width + height)) {
    throw limitError('POLYGON_STEPS_PER_SIDE_PIXEL', `segmentation polygon ${pi}: a boundary of ${Math.round(steps / 5)} px on a ${width}x${height} image`, where);
  }
  return poly as number[];
}

/**
 * Any COCO `segmentation` (list of polygons, uncompressed RLE, compressed RLE) -> 0/1 mask of height x width.
 * Several polygons combine by `rule` (default: united, as annToMask does).
 */
export function decodeSegmentation(seg: CocoSegmentation, height: number, width: number, where: string, rule: MultiPolygonRule = 'union'): LabelGrid {
  checkMaskSize(height, width, where);
  if (Array.isArray(seg)) {
    const polys = seg.map((poly, pi) => checkPolygon(poly, pi, height, width, where));
    const out = new Uint8Array(height * width);
    for (const poly of polys) {
      const m = rleDecode(rleFromPolygon(poly, height, width), where);
      if (rule === 'union') for (let i = 0; i < out.length; i++) out[i] |= m.data[i];
      else for (let i = 0; i < out.length; i++) out[i] = (out[i] + m.data[i]) & 0xff; // np.sum(...).astype(uint8)
    }
    if (rule === 'exactly-once') for (let i = 0; i < out.length; i++) out[i] = out[i] === 1 ? 1 : 0;
    return { width, height, data: out };
  }
  if (seg && typeof seg === 'object' && Array.isArray(seg.size)) {
    const [h, w] = seg.size;
    if (h !== height || w !== width) {
      throw new KvlensInputError(`RLE size ${describeValue(seg.size)} disagrees with the image size [${height}, ${width}]`, where);
    }
    if (typeof seg.counts !== 'string' && !(Array.isArray(seg.counts) && seg.counts.every((c) => typeof c === 'number' && Number.isInteger(c)))) {
      throw new KvlensInputError('RLE counts must be a string or a list of integers', where);
    }
    const rle = typeof seg.counts === 'string' ? rleFromString(seg.counts, h, w) : { height: h, width: w, counts: seg.counts };
    return rleDecode(rle, where);
  }
  throw new KvlensInputError('segmentation is neither a polygon list nor an RLE {counts, size}', where);
}
