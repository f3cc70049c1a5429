// Child process of fused-attention.test.ts: minor page faults per run of the ONNX Attention op and of
// fusedSelfAttention at a SigLIP-384 tile's shape, printed as JSON. It runs as a separate process so that it gets the
// glibc malloc settings kvlens runs with (bin/kvlens.js re-executes itself with them; they are read only at start-up),
// instead of whatever the test runner's heap has been through: with glibc's dynamic mmap threshold the fused path's own
// ~3 MB buffers were sometimes mapped afresh too, which made the count depend on earlier tests.
import { GraphBuilder } from '../../src/graph/builder.js';
import { OrtSession } from '../../src/runtime/session.js';
import { counters, spanBetween } from '../../src/runtime/stats.js';
import { f32 } from '../../src/tensor/tensor.js';
import { mulberry32 } from '../../src/util/random.js';

export const DIMS = [1, 16, 729, 72]; // scores: 16 x 729 x 729 x 4 B = 34 MB > 32 MiB

async function faultsPerRun(fused: boolean): Promise<number> {
  const [, H, , d] = DIMS;
  const g = new GraphBuilder(fused ? 'fused' : 'onnx_attention');
  const [q, k, v] = ['q', 'k', 'v'].map((n) => g.input(n, 'float32', DIMS));
  g.output(fused ? g.fusedSelfAttention(q, k, v, d ** -0.5, H) : g.attention(q, k, v, null, d ** -0.5), 'y');
  const s = await OrtSession.create(g.build());
  const rnd = mulberry32(2);
  const n = DIMS.reduce((a, b) => a * b, 1);
  const t = () => f32(DIMS, Float32Array.from({ length: n }, () => rnd() * 4 - 2));
  const feeds = { q: t(), k: t(), v: t() };
  try {
    await s.run(feeds); // warm-up
    const a = counters();
    for (let i = 0; i < 3; i++) await s.run(feeds);
    return spanBetween('x', a, counters()).minorFaults / 3;
  } finally {
    await s.dispose();
  }
}

if (process.argv[2] === '--measure') {
  const plain = await faultsPerRun(false);
  const fused = await faultsPerRun(true);
  process.stdout.write(`${JSON.stringify({ plain, fused })}\n`);
}
