// The issue-14 reproducers at the reader level: each hostile file ends quickly in a KvlensInputError naming the file
// and the field or byte offset, with bounded memory. (The CLI-level runs of the same files are in test/fuzz.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { encode } from 'fast-png';
import { unpickle } from '../../src/data/pickle.js';
import { decodeLabelPng } from '../../src/data/png.js';
import { decodeSegmentation } from '../../src/data/coco-mask.js';
import { imageSize } from '../../src/data/io.js';
import { decodeImage } from '../../src/preprocess/image.js';
import { KvlensInputError } from '../../src/util/errors.js';
import { pngWithHeader } from '../fuzz/hostile-files.js';

function quickInputError(fn: () => unknown, ...patterns: RegExp[]): void {
  const t0 = performance.now();
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof KvlensInputError, `expected KvlensInputError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
  assert.ok(performance.now() - t0 < 3000, `took ${Math.round(performance.now() - t0)} ms`);
}

async function quickInputErrorAsync(fn: () => Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  const t0 = performance.now();
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof KvlensInputError, `expected KvlensInputError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
  assert.ok(performance.now() - t0 < 3000, `took ${Math.round(performance.now() - t0)} ms`);
}

test('pickle APPENDS with 200,000 items loads (no stack overflow) and a self-containing list is fine', () => {
  const n = 200_000;
  const b = [0x80, 0x02, 0x5d, 0x28]; // PROTO 2, EMPTY_LIST, MARK
  for (let i = 0; i < n; i++) b.push(0x4b, i & 0xff); // BININT1
  b.push(0x65, 0x2e); // APPENDS STOP
  const v = unpickle(Uint8Array.from(b), 'appends.p') as number[];
  assert.equal(v.length, n);
  // l = []; l.append(l): EMPTY_LIST BINPUT 0 BINGET 0 APPEND STOP
  const self = unpickle(Uint8Array.from([0x80, 0x02, 0x5d, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2e]), 'self.p') as unknown[];
  assert.equal(self[0], self);
});

test('pickle LONG4 of 200,000 bytes is refused at once, naming the file, offset and limit', () => {
  const n = 200_000;
  const b = new Uint8Array(2 + 5 + n + 1);
  b.set([0x80, 0x02, 0x8b, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, 0]);
  b.fill(0x7f, 7, 7 + n);
  b[b.length - 1] = 0x2e;
  quickInputError(() => unpickle(b, 'long4.p'), /long4\.p/, /byte offset 2/, /200000-byte integer exceeds the limit of 4096/, /KVLENS_LIMIT_PICKLE_INT_BYTES/);
  // Within the limit, a LONG1/LONG4 is read exactly (two's complement).
  assert.equal(unpickle(Uint8Array.from([0x80, 0x02, 0x8a, 0x02, 0x00, 0x80, 0x2e]), 'neg.p'), -32768);
  assert.equal(unpickle(Uint8Array.from([0x80, 0x02, 0x8a, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x2e]), 'big.p'), 1n << 64n);
});

test('pickle INT text over Python\'s 4300-digit limit is refused', () => {
  const text = `I${'9'.repeat(5000)}\n.`;
  quickInputError(() => unpickle(new TextEncoder().encode(text), 'int.p'), /int\.p/, /5000 digits/);
});

test('a pickled dict key "__proto__" stays an own key and does not change the prototype', () => {
  // {'__proto__': {'x': 1}}: EMPTY_DICT, SHORT_BINUNICODE '__proto__', EMPTY_DICT, SHORT_BINUNICODE 'x', BININT1 1, SETITEM, SETITEM, STOP
  const key = [...Buffer.from('__proto__')];
  const d = unpickle(Uint8Array.from([0x80, 0x02, 0x7d, 0x8c, key.length, ...key, 0x7d, 0x8c, 1, 0x78, 0x4b, 1, 0x73, 0x73, 0x2e]), 'proto.p') as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(d), Object.prototype);
  assert.deepEqual(Object.keys(d), ['__proto__']);
  assert.equal((d as { x?: unknown }).x, undefined);
});

test('a COCO polygon coordinate of 1e8 is refused in milliseconds, naming the annotation, polygon and point', () => {
  quickInputError(() => decodeSegmentation([[10, 10, 1e8, 20, 30, 40]], 480, 640, 'instances.json annotation 7'),
    /instances\.json annotation 7/, /polygon 0 point 1 \(100000000, 20\)/, /640x480/);
  // A polygon sticking out a little (as real annotations do) still rasterises.
  const m = decodeSegmentation([[-3, -3, 20, -2, 20, 20, -3, 20]], 10, 10, 'ok');
  assert.equal(Array.from(m.data).reduce((s, v) => s + v, 0), 100);
});

test('a zig-zag polygon with a boundary far longer than the image is refused by the walk limit', () => {
  const poly: number[] = [];
  for (let i = 0; i < 40_000; i++) poly.push(i % 2 ? 0 : 639, i % 480);
  quickInputError(() => decodeSegmentation([poly], 480, 640, 'zigzag'), /zigzag/, /KVLENS_LIMIT_POLYGON_STEPS_PER_SIDE_PIXEL/);
});

test('RLE / mask sizes beyond the image pixel limit are refused before allocating', () => {
  quickInputError(() => decodeSegmentation({ counts: [1e10], size: [100_000, 100_000] }, 100_000, 100_000, 'rle'), /rle/, /KVLENS_LIMIT_IMAGE_PIXELS/);
  quickInputError(() => decodeSegmentation([[0, 0, 1, 0, 1, 1]], 2.5, 3, 'frac'), /mask size must be positive integers/);
});

test('LAVT RefCOCO rule: pixels covered by two polygons are background; annToMask unites them', () => {
  const a = [0, 0, 4, 0, 4, 4, 0, 4];
  const b = [2, 0, 6, 0, 6, 4, 2, 4];
  const union = decodeSegmentation([a, b], 4, 6, 'u');
  const once = decodeSegmentation([a, b], 4, 6, 'o', 'exactly-once');
  // pycocotools rasterises [0,4] x [0,4] as columns 0..3 (4 columns) per row; [2,6] as columns 2..5.
  const row = (m: { data: ArrayLike<number> }) => Array.from(m.data).slice(0, 6);
  assert.deepEqual(row(union), [1, 1, 1, 1, 1, 1]);
  assert.deepEqual(row(once), [1, 1, 0, 0, 1, 1]);
});

test('a 94-byte PNG header claiming 16000x16000 (and 12000x12000) is refused by imageSize and every decoder', async () => {
  for (const [w, h, pattern] of [[16000, 16000, /KVLENS_LIMIT_IMAGE_PIXELS/], [12000, 12000, /holds only \d+ bytes of compressed pixel data/]] as const) {
    const png = pngWithHeader(w, h, 0, 8, deflateSync(Buffer.alloc(100)));
    assert.ok(png.length < 120);
    await quickInputErrorAsync(() => imageSize({ kind: 'bytes', bytes: png, name: 'huge.png' }), /huge\.png/, pattern);
    quickInputError(() => decodeLabelPng(png, 'huge.png'), /huge\.png/, pattern);
    await quickInputErrorAsync(() => decodeImage(png, 'huge.png'), /huge\.png/, pattern);
  }
});

test('a PNG decompression bomb (100x100 header, IDAT inflating to 20 MB) is refused before decoding', async () => {
  const bomb = pngWithHeader(100, 100, 0, 8, deflateSync(Buffer.alloc(20_000_000), { level: 9 }));
  assert.ok(bomb.length < 40_000);
  quickInputError(() => decodeLabelPng(bomb, 'bomb.png'), /bomb\.png/, /inflates beyond the 10100 bytes/);
  await quickInputErrorAsync(() => decodeImage(bomb, 'bomb.png'), /bomb\.png/, /decompression bomb/);
  // A normal PNG still decodes.
  const ok = encode({ width: 3, height: 2, data: Uint8Array.from([0, 1, 2, 3, 4, 5]), depth: 8, channels: 1 });
  assert.deepEqual(Array.from(decodeLabelPng(ok, 'ok.png').data), [0, 1, 2, 3, 4, 5]);
});

test('a JPEG header far too large for its file is refused', async () => {
  // SOI, SOF0 claiming 16000x9000 with 3 components, EOI.
  const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0x23, 0x28, 0x3e, 0x80, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xff, 0xd9]);
  await quickInputErrorAsync(() => imageSize({ kind: 'bytes', bytes: jpeg, name: 'tiny.jpg' }), /tiny\.jpg/, /16000x9000/);
});
