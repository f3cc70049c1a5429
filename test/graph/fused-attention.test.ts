// Unmasked self-attention through com.microsoft MultiHeadAttention (GraphBuilder.fusedSelfAttention): the same
// numbers as the ONNX Attention op, and no [batch, head, q, k] score matrix: at a SigLIP-384 tile's shape the
// Attention op's 34 MB of scores are a fresh mapping on every run (above glibc's 32 MiB mmap ceiling), thousands of
// page faults, while the flash path stays in small per-thread blocks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { GraphBuilder } from '../../src/graph/builder.js';
import { withMallocTunables } from '../../src/runtime/malloc.js';
import { OrtSession } from '../../src/runtime/session.js';
import { f32, maxAbsDiff } from '../../src/tensor/tensor.js';
import { mulberry32 } from '../../src/util/random.js';

async function attentionSession(fused: boolean, dims: number[]): Promise<OrtSession> {
  const [, H, , d] = dims;
  const g = new GraphBuilder(fused ? 'fused' : 'onnx_attention');
  const [q, k, v] = ['q', 'k', 'v'].map((n) => g.input(n, 'float32', dims));
  g.output(fused ? g.fusedSelfAttention(q, k, v, d ** -0.5, H) : g.attention(q, k, v, null, d ** -0.5), 'y');
  return OrtSession.create(g.build());
}

function feeds(dims: number[], seed: number) {
  const rnd = mulberry32(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const t = () => f32(dims, Float32Array.from({ length: n }, () => rnd() * 4 - 2));
  return { q: t(), k: t(), v: t() };
}

test('fusedSelfAttention equals the Attention op (batch 2, 3 heads, different q/k layouts)', async () => {
  const dims = [2, 3, 17, 8];
  const f = feeds(dims, 1);
  const a = await attentionSession(false, dims);
  const b = await attentionSession(true, dims);
  try {
    const ya = (await a.run(f)).y;
    const yb = (await b.run(f)).y;
    assert.deepEqual(yb.shape, [2, 3, 17, 8]);
    assert.ok(maxAbsDiff(ya.data as Float32Array, yb.data as Float32Array) < 1e-5, `max diff ${maxAbsDiff(ya.data as Float32Array, yb.data as Float32Array)}`);
  } finally {
    await a.dispose();
    await b.dispose();
  }
});

test('fusedSelfAttention at a SigLIP-384 tile shape touches far fewer fresh pages than the Attention op', async () => {
  // Measured in a child started with kvlens's malloc settings (attention-faults.ts says why).
  const script = fileURLToPath(new URL('./attention-faults.js', import.meta.url));
  const r = spawnSync(process.execPath, [script, '--measure'], { env: withMallocTunables(process.env), encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const { plain, fused } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { plain: number; fused: number };
  const scorePages = (16 * 729 * 729 * 4) / 4096;
  assert.ok(plain > 0.9 * scorePages, `the Attention op maps its scores afresh (${plain} faults per run)`);
  // What is left for the fused op is its inputs, outputs and transposes (~3 MB each), not a score matrix.
  assert.ok(fused < 0.5 * scorePages, `fused: ${fused} faults per run, Attention op: ${plain}`);
});
