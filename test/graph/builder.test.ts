// Tiny graphs through onnxruntime, checked against values computed here in JS (float64).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder, F32_MIN } from '../../src/graph/builder.js';
import { OrtSession } from '../../src/runtime/session.js';
import { WeightSet, writeSafetensors } from '../../src/tensor/safetensors.js';
import { f32, f32ToBf16, bf16ToF32, maxAbsDiff, tensor } from '../../src/tensor/tensor.js';
import { mulberry32 as mulberry } from '../../src/util/random.js';

async function runOnce(g: GraphBuilder, feeds: Record<string, ReturnType<typeof f32>>) {
  const s = await OrtSession.create(g.build(), { threads: 1 });
  try {
    return await s.run(feeds);
  } finally {
    await s.dispose();
  }
}

test('elementwise helpers: rmsNorm, layerNorm, gelu (erf, tanh), silu, softmax match JS', async () => {
  const rnd = mulberry(1);
  const D = 16;
  const x = Float32Array.from({ length: 3 * D }, () => rnd() * 4 - 2);
  const w = Float32Array.from({ length: D }, () => 1 + rnd() * 0.2);
  const b = Float32Array.from({ length: D }, () => rnd() * 0.2);
  const g = new GraphBuilder('elem');
  const xi = g.input('x', 'float32', ['n', D]);
  const wc = g.constant(f32([D], w));
  const bc = g.constant(f32([D], b));
  g.output(g.rmsNorm(xi, wc, 1e-6), 'rms');
  g.output(g.layerNorm(xi, wc, bc, 1e-5), 'ln');
  g.output(g.gelu(xi, 'none'), 'gelu');
  g.output(g.gelu(xi, 'tanh'), 'gelu_tanh');
  g.output(g.silu(xi), 'silu');
  g.output(g.softmax(xi, -1), 'softmax');
  const out = await runOnce(g, { x: f32([3, D], x) });
  const rms = new Float64Array(3 * D), ln = new Float64Array(3 * D), sm = new Float64Array(3 * D);
  for (let r = 0; r < 3; r++) {
    const row = [...x.subarray(r * D, (r + 1) * D)];
    const ms = row.reduce((s, v) => s + v * v, 0) / D;
    const mean = row.reduce((s, v) => s + v, 0) / D;
    const vr = row.reduce((s, v) => s + (v - mean) ** 2, 0) / D;
    const mx = Math.max(...row);
    const z = row.reduce((s, v) => s + Math.exp(v - mx), 0);
    row.forEach((v, i) => {
      rms[r * D + i] = (w[i] * v) / Math.sqrt(ms + 1e-6);
      ln[r * D + i] = ((v - mean) / Math.sqrt(vr + 1e-5)) * w[i] + b[i];
      sm[r * D + i] = Math.exp(v - mx) / z;
    });
  }
  const erf = (v: number) => { // Abramowitz-Stegun 7.1.26 is too coarse; use a series/continued fraction via high-precision formula
    let s = 0, term = v, n = 0;
    while (Math.abs(term) > 1e-17 && n < 200) { s += term / (2 * n + 1); n++; term *= (-v * v) / n; }
    return (2 / Math.sqrt(Math.PI)) * s;
  };
  const gelu = [...x].map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
  const geluT = [...x].map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
  const silu = [...x].map((v) => v / (1 + Math.exp(-v)));
  assert.ok(maxAbsDiff(out.rms.data as Float32Array, rms) < 1e-6, `rms ${maxAbsDiff(out.rms.data as Float32Array, rms)}`);
  assert.ok(maxAbsDiff(out.ln.data as Float32Array, ln) < 1e-6, `ln ${maxAbsDiff(out.ln.data as Float32Array, ln)}`);
  assert.ok(maxAbsDiff(out.gelu.data as Float32Array, gelu) < 1e-6);
  assert.ok(maxAbsDiff(out.gelu_tanh.data as Float32Array, geluT) < 1e-6);
  assert.ok(maxAbsDiff(out.silu.data as Float32Array, silu) < 1e-6);
  assert.ok(maxAbsDiff(out.softmax.data as Float32Array, sm) < 1e-6);
});

test('shape ops: reshape, transpose, concat, slice, gather, split', async () => {
  const g = new GraphBuilder('shape');
  const x = g.input('x', 'float32', [2, 3]);
  const idx = g.input('idx', 'int64', [2]);
  g.output(g.transpose(g.reshape(x, [3, 2]), [1, 0]), 't');
  g.output(g.concat([x, x], 0), 'c');
  g.output(g.slice(x, [1], [3], [1]), 's');
  g.output(g.gather(x, idx, 1), 'g');
  const [a, bb] = g.split(x, [1, 2], 1);
  g.output(g.sub(bb, g.concat([a, a], 1)), 'sp');
  const xs = [1, 2, 3, 4, 5, 6];
  const out = await runOnce(g, { x: f32([2, 3], xs), idx: tensor('int64', [2], BigInt64Array.of(2n, 0n)) } as never);
  assert.deepEqual([...out.t.data as Float32Array], [1, 3, 5, 2, 4, 6]);
  assert.deepEqual(out.c.shape, [4, 3]);
  assert.deepEqual([...out.s.data as Float32Array], [2, 3, 5, 6]);
  assert.deepEqual([...out.g.data as Float32Array], [3, 1, 6, 4]);
  assert.deepEqual([...out.sp.data as Float32Array], [1, 2, 1, 2]);
});

/** JS reference attention with GQA: q [H,S,d], k/v [KV,T,d], mask [S,T]. */
function refAttention(q: Float32Array, k: Float32Array, v: Float32Array, mask: Float32Array, H: number, KV: number, S: number, T: number, d: number) {
  const out = new Float64Array(H * S * d);
  const probs = new Float64Array(H * S * T);
  const scale = 1 / Math.sqrt(d);
  for (let h = 0; h < H; h++) {
    const kh = Math.floor(h / (H / KV));
    for (let i = 0; i < S; i++) {
      const sc = new Float64Array(T);
      for (let j = 0; j < T; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += q[(h * S + i) * d + c] * k[(kh * T + j) * d + c];
        sc[j] = s * scale + mask[i * T + j];
      }
      const mx = Math.max(...sc);
      let z = 0;
      for (let j = 0; j < T; j++) { sc[j] = Math.exp(sc[j] - mx); z += sc[j]; }
      for (let j = 0; j < T; j++) {
        const p = sc[j] / z;
        probs[(h * S + i) * T + j] = p;
        for (let c = 0; c < d; c++) out[(h * S + i) * d + c] += p * v[(kh * T + j) * d + c];
      }
    }
  }
  return { out, probs };
}

test('Attention (opset 23, GQA, float mask) and explicit attention agree with JS', async () => {
  const rnd = mulberry(7);
  const H = 4, KV = 2, S = 5, T = 7, d = 8;
  const rand = (n: number) => Float32Array.from({ length: n }, () => rnd() * 2 - 1);
  const q = rand(H * S * d), k = rand(KV * T * d), v = rand(KV * T * d);
  const mask = new Float32Array(S * T);
  for (let i = 0; i < S; i++) for (let j = 0; j < T; j++) if (j > i + 2 || (i === 4 && j === 1)) mask[i * T + j] = F32_MIN;
  const g = new GraphBuilder('attn');
  const qi = g.input('q', 'float32', [1, H, S, d]);
  const ki = g.input('k', 'float32', [1, KV, T, d]);
  const vi = g.input('v', 'float32', [1, KV, T, d]);
  const mi = g.input('m', 'float32', [1, 1, S, T]);
  g.output(g.attention(qi, ki, vi, mi, 1 / Math.sqrt(d)), 'fused');
  const ex = g.explicitAttention(qi, ki, vi, mi, 1 / Math.sqrt(d), { q: H, kv: KV, dHead: d });
  g.output(ex.out, 'explicit');
  g.output(ex.probs, 'probs');
  const out = await runOnce(g, { q: f32([1, H, S, d], q), k: f32([1, KV, T, d], k), v: f32([1, KV, T, d], v), m: f32([1, 1, S, T], mask) });
  const ref = refAttention(q, k, v, mask, H, KV, S, T, d);
  assert.ok(maxAbsDiff(out.fused.data as Float32Array, ref.out) < 1e-6);
  assert.ok(maxAbsDiff(out.explicit.data as Float32Array, ref.out) < 1e-6);
  assert.ok(maxAbsDiff(out.probs.data as Float32Array, ref.probs) < 1e-6);
  assert.equal((out.probs.data as Float32Array)[4 * T + 1], 0, 'blocked key gets probability 0');
});

test('external weights: F32 at an unaligned offset and BF16 with an in-graph Cast, read from a safetensors file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-graph-'));
  try {
    const w = Float32Array.from([0.5, -1.25, 2, 3.5, -0.75, 1]);
    const wb = f32ToBf16(Float32Array.from([1.1, 2.2, 3.3, 4.4, 5.5, 6.6]));
    writeSafetensors(join(dir, 'model.safetensors'), { a: f32([2, 3], w), b: tensor('bfloat16', [2, 3], wb) }, { note: 'x' }, 1);
    const ws = WeightSet.open(dir);
    assert.notEqual(ws.entry('a').fileOffset % 4, 0, 'the test wants an unaligned F32 offset');
    const g = new GraphBuilder('ext');
    const x = g.input('x', 'float32', [1, 3]);
    g.output(g.linear(x, g.weight(ws.entry('a'))), 'ya');
    g.output(g.linear(x, g.weight(ws.entry('b'))), 'yb');
    const out = await runOnce(g, { x: f32([1, 3], [1, 2, 3]) });
    assert.deepEqual([...out.ya.data as Float32Array], [0.5 - 2.5 + 6, 3.5 - 1.5 + 3]);
    const bw = bf16ToF32(wb);
    const yb = [bw[0] + 2 * bw[1] + 3 * bw[2], bw[3] + 2 * bw[4] + 3 * bw[5]];
    assert.ok(maxAbsDiff(out.yb.data as Float32Array, yb) < 1e-5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
