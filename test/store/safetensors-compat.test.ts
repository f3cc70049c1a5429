// The shards are plain safetensors: checked with a parser written here from the format description (not
// src/tensor/safetensors.ts), with the rules of the official loader (contiguous offsets, no gaps, no trailing bytes,
// string-only __metadata__), and with Python/numpy when available.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreWriter } from '../../src/store/writer.js';
import { TAPS, expectedGrid, identity, imageId, record, tensors } from './synthetic.js';

interface Parsed { metadata: Record<string, string>; tensors: Map<string, { dtype: string; shape: number[]; data: Float64Array }> }

/** Decode an IEEE binary16 bit pattern by its definition. */
function half(bits: number): number {
  const sign = bits >> 15 ? -1 : 1;
  const exp = (bits >> 10) & 31;
  const frac = bits & 1023;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return exp === 0 ? sign * frac * Math.pow(2, -24) : sign * (1024 + frac) * Math.pow(2, exp - 25);
}

function parseIndependently(file: string): Parsed {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, any>;
  const data = bytes.subarray(8 + n);
  const metadata = header.__metadata__ ?? {};
  for (const v of Object.values(metadata)) assert.equal(typeof v, 'string');
  const entries = Object.entries(header).filter(([k]) => k !== '__metadata__');
  // Official loader rule: sorted by offset, each tensor starts where the previous ended, the last ends at the file's end.
  const sorted = [...entries].sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  let expectStart = 0;
  for (const [name, e] of sorted) {
    assert.equal(e.data_offsets[0], expectStart, `${name}: gap or overlap`);
    expectStart = e.data_offsets[1];
  }
  assert.equal(expectStart, data.length, 'data section has trailing bytes or is short');
  const tensorsOut = new Map<string, { dtype: string; shape: number[]; data: Float64Array }>();
  for (const [name, e] of entries) {
    const size = e.dtype === 'F16' ? 2 : e.dtype === 'F32' ? 4 : NaN;
    const count = (e.shape as number[]).reduce((a, b) => a * b, 1);
    assert.equal(e.data_offsets[1] - e.data_offsets[0], count * size, name);
    const out = new Float64Array(count);
    for (let k = 0; k < count; k++) {
      const at = e.data_offsets[0] + k * size;
      out[k] = size === 2 ? half(data.readUInt16LE(at)) : data.readFloatLE(at);
    }
    tensorsOut.set(name, { dtype: e.dtype, shape: e.shape, data: out });
  }
  return { metadata, tensors: tensorsOut };
}

function writeStore(dtype: 'float16' | 'float32'): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-stc-'));
  const w = StoreWriter.open(dir, { identity: identity({ dtype }), maxShardBytes: 8_000, kvlensVersion: '0.0.0-test' });
  for (let i = 0; i < 8; i++) w.add(imageId(i), record(i), tensors(i));
  w.close();
  return dir;
}

/** f32 -> nearest f16 value (ties to even), computed in float64 arithmetic without the store's converter. */
function roundToHalf(x: number): number {
  if (x === 0) return x;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const ulp = Math.pow(2, e - 10);
  const q = x / ulp;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q)) === 0.5) r = 2 * Math.round(q / 2);
  return r * ulp;
}

for (const dtype of ['float32', 'float16'] as const) {
  test(`${dtype} shards parse with an independent safetensors parser; every tensor matches the input`, () => {
    const dir = writeStore(dtype);
    const files = readdirSync(join(dir, 'shards')).sort();
    assert.ok(files.length >= 2, `several shards expected, got ${files}`);
    let seen = 0;
    for (const f of files) {
      const p = parseIndependently(join(dir, 'shards', f));
      assert.equal(p.metadata.format, 'pt');
      for (const [name, t] of p.tensors) {
        const m = /^(.*)\/([^/]+)\/([^/]+)$/.exec(name)!;
        const i = Number(/img\/(\d+)\.jpg/.exec(m[1])![1]);
        const exp = expectedGrid(i, m[2], m[3])!;
        assert.equal(t.dtype, dtype === 'float16' ? 'F16' : 'F32');
        assert.deepEqual(t.shape, [exp.rows, exp.cols, exp.dim]);
        for (let k = 0; k < exp.data.length; k++) {
          const want = dtype === 'float16' ? roundToHalf(exp.data[k]) : exp.data[k];
          if (t.data[k] !== want) assert.fail(`${name}[${k}]: ${t.data[k]} vs ${want}`);
        }
        seen++;
      }
    }
    assert.equal(seen, TAPS.length * (8 + 6)); // images 2 and 5 have no highres view
  });
}

const python = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
test('Python reads the shards (safetensors package if installed, else numpy on the raw format)', { skip: python.status !== 0 ? 'python3 with numpy not available' : false }, () => {
  const dir = writeStore('float16');
  const file = join(dir, 'shards', readdirSync(join(dir, 'shards')).sort()[0]);
  const code = `
import json, struct, sys
import numpy as np
path = sys.argv[1]
try:
    from safetensors.numpy import load_file
    arrays = load_file(path); how = "safetensors"
except ImportError:
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n]); data = raw[8 + n:]
    header.pop("__metadata__", None)
    arrays = {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dtype={"F16": "<f2", "F32": "<f4"}[v["dtype"]]).reshape(v["shape"]) for k, v in header.items()}
    how = "numpy"
out = {k: {"shape": list(a.shape), "sum": float(a.astype(np.float64).sum()), "first": [float(x) for x in a.reshape(-1)[:3]]} for k, a in arrays.items()}
print(json.dumps({"how": how, "tensors": out}))
`;
  const r = spawnSync('python3', ['-c', code, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { how: string; tensors: Record<string, { shape: number[]; sum: number; first: number[] }> };
  const names = Object.keys(got.tensors);
  assert.ok(names.length >= TAPS.length, `python saw ${names.length} tensors`);
  for (const name of names) {
    const m = /^(.*)\/([^/]+)\/([^/]+)$/.exec(name)!;
    const exp = expectedGrid(Number(/img\/(\d+)\.jpg/.exec(m[1])![1]), m[2], m[3])!;
    const halves = Array.from(exp.data, roundToHalf);
    assert.deepEqual(got.tensors[name].shape, [exp.rows, exp.cols, exp.dim]);
    assert.deepEqual(got.tensors[name].first, halves.slice(0, 3));
    const sum = halves.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(got.tensors[name].sum - sum) <= 1e-9 * Math.max(1, Math.abs(sum)), `${name}: sum ${got.tensors[name].sum} vs ${sum}`);
  }
});
