import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, symlinkSync, mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensorsHeader, readTensor, WeightSet, writeSafetensors, readAllTensors } from '../../src/tensor/safetensors.js';
import { f32, i64, bf16ToF32, f32ToBf16, f16ToF32, f32ToF16, tensor } from '../../src/tensor/tensor.js';
import { KvlensInputError } from '../../src/util/errors.js';
import { HF_REF } from '../helpers/fixtures.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-st-'));

function rawFile(header: object, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

test('round-trips f32/i64/bf16 tensors with metadata and alignment', () => {
  const d = tmp();
  const p = join(d, 'a.safetensors');
  const bf = tensor('bfloat16', [3], f32ToBf16(Float32Array.from([1.5, -2, 3.25])));
  writeSafetensors(p, { w: f32([2, 3], [1, 2, 3, 4, 5, 6]), ids: i64([2], [7, -9]), b: bf }, { format: 'pt' }, 4096);
  const h = readSafetensorsHeader(p);
  assert.equal(h.metadata.format, 'pt');
  assert.equal(h.dataStart % 4096, 0);
  for (const e of h.tensors.values()) assert.equal((e.fileOffset) % 4096, 0);
  const all = readAllTensors(p);
  assert.deepEqual([...(all.get('w')!.data as Float32Array)], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...(all.get('ids')!.data as BigInt64Array)], [7n, -9n]);
  assert.deepEqual([...bf16ToF32(all.get('b')!.data as Uint16Array)], [1.5, -2, 3.25]);
});

test('f16 and bf16 conversions round to nearest even and are exact on representable values', () => {
  const xs = Float32Array.from([0, -0, 1, -1, 65504, 6.103515625e-5, 5.960464477539063e-8, 0.1, Infinity, -Infinity]);
  const back = f16ToF32(f32ToF16(xs));
  assert.deepEqual([...back.slice(0, 7)], [...xs.slice(0, 7)]);
  assert.equal(back[7], 0.0999755859375);
  assert.equal(back[8], Infinity);
  const b = bf16ToF32(f32ToBf16(Float32Array.from([1 + 2 ** -8, 1 + 3 * 2 ** -8])));
  assert.deepEqual([...b], [1, 1 + 2 ** -6]); // ties to even
});

test('reads the fixture checkpoint header and a weight', () => {
  const ws = WeightSet.open(join(HF_REF, 'models', 'qwen2_tiny'));
  const e = ws.expect('model.embed_tokens.weight', [288, 64]);
  const t = readTensor(e);
  assert.equal(t.dtype, 'float32');
  assert.equal(t.data.length, 288 * 64);
  assert.throws(() => ws.entry('model.nope'), /missing weight "model.nope"/);
  assert.throws(() => ws.expect('model.embed_tokens.weight', [10, 64]), /has shape \[288, 64\], the config implies \[10, 64\]/);
});

test('rejects truncated, lying and overlapping headers with the file named', () => {
  const d = tmp();
  const data = Buffer.alloc(16);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['short', Buffer.from([1, 2, 3]), /truncated safetensors file/],
    ['hdrlen', (() => { const b = Buffer.alloc(16); b.writeBigUInt64LE(1000n); return b; })(), /header claims 1000 bytes/],
    ['json', (() => { const j = Buffer.from('{nope'); const l = Buffer.alloc(8); l.writeBigUInt64LE(BigInt(j.length)); return Buffer.concat([l, j]); })(), /not valid JSON/],
    ['dtype', rawFile({ a: { dtype: 'Q4', shape: [1], data_offsets: [0, 4] } }, data), /unsupported dtype "Q4"/],
    ['size', rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data), /needs 12/],
    ['beyond', rawFile({ a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, data), /beyond the data section/],
    ['overlap', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data), /overlap/],
    // An empty tensor sorted between two overlapping ones used to reset the comparison (issue 14).
    ['overlap-empty', rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] }, e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, data), /"a" \[0, 12\) and "b" \[8, 16\) overlap/],
    ['overlap-nested', rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] }, c: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, data), /"a" \[0, 16\) and "b" \[4, 8\) overlap/],
    ['shape-unsafe', rawFile({ a: { dtype: 'F32', shape: [2 ** 60, 2 ** 60], data_offsets: [0, 4] } }, data), /shape must be an array of non-negative integers/],
    ['dtype-proto', rawFile({ a: { dtype: 'constructor', shape: [1], data_offsets: [0, 4] } }, data), /unsupported dtype "constructor"/],
  ];
  for (const [name, bytes, re] of cases) {
    const p = join(d, `${name}.safetensors`);
    writeFileSync(p, bytes);
    assert.throws(() => readSafetensorsHeader(p), (e: unknown) => e instanceof KvlensInputError && re.test(e.message) && e.message.includes(p), name);
  }
});

test('opens sharded checkpoints and hub-cache snapshots of symlinks, read-only', () => {
  const root = tmp();
  const blobs = join(root, 'blobs');
  const snap = join(root, 'snapshots', 'abc123');
  mkdirSync(blobs, { recursive: true });
  mkdirSync(snap, { recursive: true });
  writeSafetensors(join(blobs, 'sha1'), { 'a.weight': f32([2], [1, 2]) });
  writeSafetensors(join(blobs, 'sha2'), { 'b.weight': f32([1], [3]) });
  writeFileSync(join(blobs, 'sha3'), JSON.stringify({ metadata: {}, weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors' } }));
  symlinkSync('../../blobs/sha1', join(snap, 'model-00001-of-00002.safetensors'));
  symlinkSync('../../blobs/sha2', join(snap, 'model-00002-of-00002.safetensors'));
  symlinkSync('../../blobs/sha3', join(snap, 'model.safetensors.index.json'));
  chmodSync(snap, 0o555);
  const ws = WeightSet.open(snap);
  assert.deepEqual(ws.names().sort(), ['a.weight', 'b.weight']);
  assert.equal(ws.entry('a.weight').file, join(blobs, 'sha1'));
  assert.deepEqual([...(ws.read('b.weight').data as Float32Array)], [3]);
  assert.ok(readFileSync(join(snap, 'model.safetensors.index.json')).length > 0);
});
