// LM benchmark: a random-weight Qwen2-0.5B-shaped decoder (f32 safetensors, 4 KiB-aligned) written to a temp
// dir, a 729+32-token prefill with every layer's K/V tapped, a 32-token follow-up on the cached 729-token
// prefix, and the ORT MatMul ceiling [729x896]x[896x4864] measured in the same process for the ratio.

import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../src/graph/builder.js';
import { OrtSession } from '../src/runtime/session.js';
import { loadQwen2 } from '../src/models/qwen2/index.js';
import { layoutSafetensors } from '../src/tensor/safetensors.js';
import { f32, numel } from '../src/tensor/tensor.js';
import { mulberry32 } from '../src/util/random.js';
import { peakRssBytes, type BenchRow } from './common.js';

export interface LmBenchShape {
  hidden: number; layers: number; heads: number; kvHeads: number; intermediate: number; vocab: number;
  imageTokens: number; questionTokens: number;
}

export const QWEN2_05B: LmBenchShape = {
  hidden: 896, layers: 24, heads: 14, kvHeads: 2, intermediate: 4864, vocab: 151936, imageTokens: 729, questionTokens: 32,
};

/** Write the checkpoint tensor by tensor in 16 MiB chunks so the benchmark's peak RSS is the engine's, not ours. */
export function writeRandomCheckpoint(dir: string, s: LmBenchShape): number {
  const D = s.hidden, dh = D / s.heads, KV = s.kvHeads * dh;
  const specs: { name: string; shape: number[]; std: number; ones?: boolean }[] = [
    { name: 'model.embed_tokens.weight', shape: [s.vocab, D], std: 0.02 },
  ];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    specs.push(
      { name: `${p}input_layernorm.weight`, shape: [D], std: 0, ones: true },
      { name: `${p}post_attention_layernorm.weight`, shape: [D], std: 0, ones: true },
      { name: `${p}self_attn.q_proj.weight`, shape: [D, D], std: 1 / Math.sqrt(D) }, { name: `${p}self_attn.q_proj.bias`, shape: [D], std: 0.02 },
      { name: `${p}self_attn.k_proj.weight`, shape: [KV, D], std: 1 / Math.sqrt(D) }, { name: `${p}self_attn.k_proj.bias`, shape: [KV], std: 0.02 },
      { name: `${p}self_attn.v_proj.weight`, shape: [KV, D], std: 1 / Math.sqrt(D) }, { name: `${p}self_attn.v_proj.bias`, shape: [KV], std: 0.02 },
      { name: `${p}self_attn.o_proj.weight`, shape: [D, D], std: 1 / Math.sqrt(D) },
      { name: `${p}mlp.gate_proj.weight`, shape: [s.intermediate, D], std: 1 / Math.sqrt(D) },
      { name: `${p}mlp.up_proj.weight`, shape: [s.intermediate, D], std: 1 / Math.sqrt(D) },
      { name: `${p}mlp.down_proj.weight`, shape: [D, s.intermediate], std: 1 / Math.sqrt(s.intermediate) },
    );
  }
  specs.push({ name: 'model.norm.weight', shape: [D], std: 0, ones: true });
  const { header, offsets } = layoutSafetensors(specs.map((x) => ({ name: x.name, dtype: 'float32' as const, shape: x.shape })), undefined, 4096);
  const rnd = mulberry32(1234);
  const pool = Float32Array.from({ length: 1 << 22 }, () => (rnd() * 2 - 1) * Math.sqrt(3)); // unit variance
  const chunk = new Float32Array(1 << 22);
  const path = join(dir, 'model.safetensors');
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header, 0, header.length, 0);
    specs.forEach((sp, i) => {
      const n = numel(sp.shape);
      for (let done = 0; done < n; done += chunk.length) {
        const m = Math.min(chunk.length, n - done);
        const start = Math.floor(rnd() * (pool.length - m));
        for (let j = 0; j < m; j++) chunk[j] = sp.ones ? 1 : pool[start + j] * sp.std;
        writeSync(fd, new Uint8Array(chunk.buffer, 0, m * 4), 0, m * 4, header.length + offsets[i] + done * 4);
      }
    });
  } finally {
    closeSync(fd);
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    model_type: 'qwen2', hidden_size: D, num_hidden_layers: s.layers, num_attention_heads: s.heads, num_key_value_heads: s.kvHeads,
    intermediate_size: s.intermediate, vocab_size: s.vocab, tie_word_embeddings: true, rope_theta: 1e6,
  }));
  return statSync(path).size;
}

async function timeIt(f: () => Promise<unknown>, repeats: number): Promise<number> {
  await f(); // warm-up
  const ts: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await f();
    ts.push((performance.now() - t0) / 1000);
  }
  return Math.min(...ts); // best of the repeats: background load only ever adds time
}

async function matmulCeiling(M: number, K: number, N: number): Promise<number> {
  const g = new GraphBuilder('matmul');
  const a = g.input('a', 'float32', [M, K]);
  const b = g.input('b', 'float32', [K, N]);
  g.output(g.matmul(a, b), 'y');
  const s = await OrtSession.create(g.build());
  const rnd = mulberry32(5);
  const A = f32([M, K], Float32Array.from({ length: M * K }, () => rnd() - 0.5));
  const B = f32([K, N], Float32Array.from({ length: K * N }, () => rnd() - 0.5));
  const t = await timeIt(() => s.run({ a: A, b: B }), 5);
  await s.dispose();
  return (2 * M * K * N) / t / 1e9;
}

/** Matmul + attention FLOPs of a prefill of S new tokens over T total keys (logits at one position). */
function prefillFlops(s: LmBenchShape, S: number, T: number): number {
  const D = s.hidden, dh = D / s.heads, KV = s.kvHeads * dh;
  const perTokenParams = D * D * 2 + 2 * D * KV + 3 * D * s.intermediate;
  return s.layers * (2 * perTokenParams * S + 4 * S * T * D) + 2 * D * s.vocab;
}

export async function benchLm(shape: LmBenchShape = QWEN2_05B): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-bench-lm-'));
  try {
    const tw = performance.now();
    const weightBytes = writeRandomCheckpoint(dir, shape);
    const writeS = (performance.now() - tw) / 1000;
    const ceiling = await matmulCeiling(shape.imageTokens, shape.hidden, shape.intermediate);
    const tl = performance.now();
    const lm = await loadQwen2(dir);
    const loadS = (performance.now() - tl) / 1000;
    try {
      const rnd = mulberry32(9);
      const S = shape.imageTokens + shape.questionTokens;
      const ids = [Array.from({ length: S }, () => Math.floor(rnd() * shape.vocab))];
      const taps = ['lm.*.attn.k', 'lm.*.attn.v'];
      const prefillS = await timeIt(() => lm.forward({ inputIds: ids, taps, logitsAt: 'last' }), 2);
      const prefix = await lm.forward({ inputIds: [ids[0].slice(0, shape.imageTokens)], logitsAt: 'none' });
      const question = [ids[0].slice(shape.imageTokens)];
      const followS = await timeIt(() => lm.forward({ inputIds: question, past: prefix.cache, taps, logitsAt: 'last' }), 3);
      const gflops = prefillFlops(shape, S, S) / prefillS / 1e9;
      const rss = peakRssBytes(); // VmHWM: mmapped weight pages included
      const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
      return [
        { metric: 'checkpoint write (f32, 4 KiB aligned)', value: `${writeS.toFixed(1)} s, ${gib(weightBytes)}` },
        { metric: 'load (24 layer sessions)', value: `${loadS.toFixed(2)} s` },
        { metric: `ORT MatMul [${shape.imageTokens}x${shape.hidden}]x[${shape.hidden}x${shape.intermediate}]`, value: `${ceiling.toFixed(0)} GFLOP/s` },
        { metric: `prefill ${shape.imageTokens}+${shape.questionTokens} tokens, all K/V taps`, value: `${prefillS.toFixed(2)} s, ${gflops.toFixed(0)} GFLOP/s` },
        { metric: 'prefill / MatMul ceiling', value: (gflops / ceiling).toFixed(2), target: '>= 0.8', ok: gflops / ceiling >= 0.8 },
        { metric: `follow-up ${shape.questionTokens} tokens on cached ${shape.imageTokens}`, value: `${followS.toFixed(3)} s` },
        { metric: 'follow-up / full prefill', value: (followS / prefillS).toFixed(3), target: '<= 0.10', ok: followS / prefillS <= 0.1 },
        { metric: 'peak RSS (VmHWM) / weight bytes', value: `${(rss / weightBytes).toFixed(2)} (${gib(rss)})`, target: '<= 1.3', ok: rss / weightBytes <= 1.3 },
      ];
    } finally {
      await lm.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

