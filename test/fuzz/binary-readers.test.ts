// Seeded fuzz of the binary readers: safetensors header, pickle, PNG (label, ImageNet-S, model-input decoders and the
// header reader), BMP. See harness.ts for the checks and FUZZ_CASES.
import { test, after } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { encode } from 'fast-png';
import { readSafetensorsHeader } from '../../src/tensor/safetensors.js';
import { unpickle } from '../../src/data/pickle.js';
import { picklePy2 } from '../../src/data/synthetic/pickle-writer.js';
import { decodeImageNetSMask, decodeLabelPng, vocPalette } from '../../src/data/png.js';
import { decodeBmp, encodeBmp24 } from '../../src/data/bmp.js';
import { imageSize } from '../../src/data/io.js';
import { decodeImage } from '../../src/preprocess/image.js';
import { describeValue } from '../../src/util/errors.js';
import { HF_REF } from '../helpers/fixtures.js';
import { assertClean, fuzz, jsonText, mutateBytes, mutateJson } from './harness.js';
import { pngWithHeader } from './hostile-files.js';

const tmp = mkdtempSync(join(tmpdir(), 'kvlens-fuzz-bin-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('fuzz: safetensors header', async () => {
  const real = readFileSync(join(HF_REF, 'models', 'qwen2_tiny', 'model.safetensors'));
  const n = Number(real.readBigUInt64LE(0));
  const header = JSON.parse(real.subarray(8, 8 + n).toString('utf8'));
  const data = real.subarray(8 + n, 8 + n + 4096); // enough for the first tensors; the rest "truncated"
  const path = join(tmp, 'fuzz.safetensors');
  assertClean(await fuzz({
    name: 'safetensors', defaultCases: 400,
    make: (rng) => {
      if (rng.next() < 0.3) return mutateBytes(rng, Uint8Array.from(real.subarray(0, 8 + n + 64)));
      const h = Buffer.from(jsonText(mutateJson(rng, header)));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      return Uint8Array.from(Buffer.concat([len, h, data]));
    },
    size: (b) => b.length,
    run: (b) => { writeFileSync(path, b); return readSafetensorsHeader(path).tensors.size; },
  }));
});

test('fuzz: pickle', async () => {
  const refs = Array.from({ length: 6 }, (_, i) => ({
    ref_id: i, ann_id: 1000 + i, image_id: 7, category_id: 3, split: i % 2 ? 'testA' : 'val', file_name: `COCO_${i}.jpg`,
    sentences: [{ sent_id: i, sent: `left thing ${i}`, raw: 'Left thing', tokens: ['left', 'thing'] }], big: 2 ** 40 + i, f: 0.25,
  }));
  const seed = picklePy2(refs);
  // Protocol-0 text and protocol-2 memo/opcode variety from CPython (test/data/pickle.test.ts).
  const proto0 = Uint8Array.from(Buffer.from('286c70300a286470310a567265665f69640a70320a49370a7356616e6e5f69640a70330a4c3132333435363738393031324c0a735673706c69740a70340a5674657374410a70350a73612e', 'hex'));
  assertClean(await fuzz({
    name: 'pickle', defaultCases: 1500,
    make: (rng) => mutateBytes(rng, rng.next() < 0.7 ? seed : proto0),
    size: (b) => b.length,
    run: (b) => describeValue(unpickle(b, 'fuzz.p')),
  }));
});

test('fuzz: PNG (label, ImageNet-S and model-input decoders, header reader)', async () => {
  const w = 23, h = 17;
  const idx = Uint8Array.from({ length: w * h }, (_, i) => (i * 7) % 21);
  const seeds = [
    encode({ width: w, height: h, data: idx, depth: 8, channels: 1, palette: vocPalette(32) }),
    encode({ width: w, height: h, data: Uint16Array.from(idx, (v) => v * 300), depth: 16, channels: 1 }),
    encode({ width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => i % 251), depth: 8, channels: 3 }),
    encode({ width: w, height: h, data: Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 3) % 256), depth: 8, channels: 4 }),
    pngWithHeader(64, 64, 0, 8, deflateSync(Buffer.alloc(65 * 64 * 40))), // a small bomb
  ];
  assertClean(await fuzz({
    name: 'png', defaultCases: 600,
    make: (rng) => mutateBytes(rng, rng.pick(seeds)),
    size: (b) => b.length,
    run: async (b) => {
      const r: unknown[] = [];
      for (const f of [() => decodeLabelPng(b, 'fuzz.png'), () => decodeImageNetSMask(b, 'fuzz.png')]) {
        try { r.push(f()); } catch (e) { r.push(e); }
      }
      try { r.push(await imageSize({ kind: 'bytes', bytes: b, name: 'fuzz.png' })); } catch (e) { r.push(e); }
      r.push(await decodeImage(b, 'fuzz.png'));
      for (const x of r) if (x instanceof Error && x.name !== 'KvlensInputError') throw x;
    },
  }));
});

test('fuzz: BMP', async () => {
  const img = { width: 13, height: 9, data: Uint8Array.from({ length: 13 * 9 * 3 }, (_, i) => (i * 5) % 256) };
  const seed24 = encodeBmp24(img);
  // 8-bit palette variant: header 40 + 256 BGRx entries.
  const rowBytes = Math.ceil(13 / 4) * 4;
  const pal = new Uint8Array(54 + 1024 + rowBytes * 9);
  const dv = new DataView(pal.buffer);
  pal[0] = 0x42; pal[1] = 0x4d; dv.setUint32(10, 54 + 1024, true); dv.setUint32(14, 40, true); dv.setInt32(18, 13, true);
  dv.setInt32(22, -9, true); dv.setUint16(26, 1, true); dv.setUint16(28, 8, true);
  for (let i = 0; i < 1024; i++) pal[54 + i] = i % 256;
  for (let i = 0; i < rowBytes * 9; i++) pal[54 + 1024 + i] = i % 40;
  assertClean(await fuzz({
    name: 'bmp', defaultCases: 800,
    make: (rng) => mutateBytes(rng, rng.next() < 0.5 ? seed24 : pal),
    size: (b) => b.length,
    run: (b) => decodeBmp(b, 'fuzz.bmp'),
  }));
});
