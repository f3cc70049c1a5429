// Full VLM benchmark (issue 2 targets): a random-weight LLaVA-OneVision-0.5B (SigLIP so400m-patch14-384, 26 layers +
// Qwen2-0.5B, f32, 4 KiB-aligned) is generated into a temp dir, then a child process (so that its peak RSS is the
// engine's alone, not the generator's) loads it and measures, for one 384x384 image plus 32 text tokens:
//   - prefill + capture: vision tower + projector + anyres packing + LM prefill with every layer's K and V tapped;
//   - effective GFLOP/s of that prefill (matmul + attention FLOPs) against a plain ORT MatMul [729x896]x[896x4864]
//     measured in the same process, interleaved with the prefills (best of each, so background load hits both);
//   - a 32-token follow-up question on the cached image prefix, against the full prefill;
//   - peak RSS (VmHWM) against the checkpoint's bytes.
// A 384x384 image is one base tile plus a 1x1 high-resolution grid (best pinpoint 384x384): 729 + 27 x (27 + 1
// newline) = 1485 image tokens; the table reports the counts actually run.
// The SigLIP tower sees 27 x 27 patches of each 384 px tile (its strided conv floors 384 / 14, as in the real checkpoint).
//
//   npx tsx bench/vlm.ts [--repeats 2] [--keep]

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphBuilder } from '../src/graph/builder.js';
import { OrtSession } from '../src/runtime/session.js';
import { LlavaOnevision } from '../src/models/llava_onevision/model.js';
import { LLAVA_ONEVISION_0_5B, writeLlavaOnevisionCheckpoint } from '../src/models/synthetic/llava-onevision.js';
import { LlavaOnevisionProcessor } from '../src/preprocess/processor.js';
import type { RgbImage } from '../src/preprocess/image.js';
import type { DecoderConfig } from '../src/models/lm/config.js';
import { f32, type Tensor } from '../src/tensor/tensor.js';
import type { KvCache } from '../src/models/lm/cache.js';
import { mulberry32 } from '../src/util/random.js';
import { counters, spanBetween, startRecording, type Span } from '../src/runtime/stats.js';
import { mallocTuned, withMallocTunables } from '../src/runtime/malloc.js';
import { peakRssBytes, type BenchRow } from './common.js';
import { breakdownRows, groupSpans, type BreakdownRow } from './breakdown.js';

const IMAGE_SIDE = 384;
const SPEC = LLAVA_ONEVISION_0_5B;
const TEXT_TOKENS = 32;
const KV_TAPS = ['lm.*.attn.k', 'lm.*.attn.v'];
const CEILING = { M: 729, K: 896, N: 4864 };
export const CEILING_GFLOP = (2 * CEILING.M * CEILING.K * CEILING.N) / 1e9;
/** Seconds of back-to-back MatMuls per sustained ceiling block (a prefill runs for many seconds, so under background
 * load its fair reference is the MatMul's sustained rate, not its luckiest 50 ms burst; both are reported). */
const SUSTAINED_S = 4;

/** What the child measures (all times in seconds, memory in bytes). */
export interface VlmBenchResult {
  readonly machine: { cores: number; cpu: string; loadAvgStart: number[]; loadAvgEnd: number[] };
  readonly tokens: { image: number; text: number; total: number; tiles: number; followUp: number };
  readonly weightBytes: number;
  readonly loadSeconds: number;
  readonly prefillSeconds: number[];
  readonly prefillCpuSeconds: number[];
  /** single MatMul runs */
  readonly ceilingSeconds: number[];
  readonly ceilingCpuSeconds: number[];
  /** seconds per MatMul in each sustained block (mean over the block) */
  readonly sustainedCeilingSeconds: number[];
  readonly prefillGflop: number;
  readonly ceilingGflop: number;
  readonly followUpSeconds: number[];
  readonly peakRssBytes: number;
  /** Wall / CPU / system time and page faults of the load, each prefill, each follow-up and each ceiling block. */
  readonly loadSpan: Span;
  readonly prefillSpans: Span[];
  readonly followUpSpans: Span[];
  readonly ceilingSpans: Span[];
  /** Where the last prefill's time went (bench/breakdown.ts) and that prefill's whole span. */
  readonly breakdown: BreakdownRow[];
  readonly breakdownTotal: Span;
  /** Whether the child ran with kvlens's glibc malloc tunables (src/runtime/malloc.ts). */
  readonly mallocTuned: boolean;
}

export interface VlmBenchSummary {
  readonly result: VlmBenchResult;
  readonly checkpointWriteSeconds: number;
  readonly rows: BenchRow[];
  /** Per-part breakdown of the last prefill. */
  readonly breakdown: BenchRow[];
}

/** Peak resident set (VmHWM: file-backed mmapped weights included) of this process. */

/** Matmul + attention FLOPs of the vision tower and projector over `tiles` tiles. */
export function visionFlops(model: LlavaOnevision, tiles: number): number {
  const v = model.config.vision;
  const D = v.hidden_size, I = v.intermediate_size, P = v.patch_size;
  const n = Math.floor(v.image_size / P) ** 2; // tokens per tile
  const d = model.text.hiddenSize;
  const conv = 2 * n * D * v.num_channels * P * P;
  const layer = 2 * n * (4 * D * D + 2 * D * I) + 4 * n * n * D;
  const projector = 2 * n * (D * d + d * d);
  return tiles * (conv + v.num_hidden_layers * layer + projector);
}

/** Matmul + attention FLOPs of an LM prefill of S new tokens over T keys, with logits at one position. */
export function lmFlops(c: DecoderConfig, S: number, T: number): number {
  const D = c.hiddenSize, Q = c.numHeads * c.headDim, KV = c.numKvHeads * c.headDim;
  const params = D * Q + Q * D + 2 * D * KV + 3 * D * c.intermediateSize;
  return c.numLayers * (2 * params * S + 4 * S * T * Q) + 2 * D * c.vocabSize;
}

export function noiseImage(side: number): RgbImage {
  const rnd = mulberry32(3);
  const data = new Uint8Array(side * side * 3);
  for (let i = 0; i < data.length; i++) data[i] = ((i % (3 * side)) / 6 + rnd() * 60) & 255;
  return { width: side, height: side, data };
}

/** A prompt with exactly `want` text tokens around the image: the question grows character by character. */
export async function promptWithTextTokens(p: LlavaOnevisionProcessor, img: RgbImage, want: number) {
  const sentence = 'What objects are visible here, and where is each one placed relative to the others in this picture? '.repeat(4);
  // The generated checkpoint's byte-level BPE spends a token per character or two, so the chat template is used
  // without its system turn; failing that, a bare "<image>\nquestion" prompt.
  for (const mode of ['template', 'bare'] as const) {
    for (let n = 1; n <= sentence.length; n++) {
      const question = sentence.slice(0, n);
      const out = await p.prepare({ images: [img], ...(mode === 'template' ? { question, systemPrompt: null } : { text: `<image>\n${question}` }) });
      const run = out.tokenMap.runs[0];
      const text = out.tokenMap.length - (run.end - run.start);
      if (text === want) return out;
      if (text > want) break;
    }
  }
  throw new Error(`no prompt with exactly ${want} text tokens`);
}

/** The first `n` positions of a (1-D RoPE, unpadded) cache: [batch, kvHead, n, dHead] per layer. */
function truncateCache(c: KvCache, n: number): KvCache {
  const cut = (t: Tensor<'float32'>) => {
    const [B, H, T, d] = t.shape;
    const out = new Float32Array(B * H * n * d);
    for (let bh = 0; bh < B * H; bh++) out.set(t.data.subarray(bh * T * d, (bh * T + n) * d), bh * n * d);
    return f32([B, H, n, d], out);
  };
  if (c.padding) throw new Error('truncateCache: padded caches are not handled');
  return { length: n, batch: c.batch, keys: c.keys.map(cut), values: c.values.map(cut), nextPositions: c.nextPositions.map(() => n) };
}

async function timed<T>(f: () => Promise<T>, label = 'timed'): Promise<{ s: number; cpu: number; value: T; span: Span }> {
  const a = counters();
  const value = await f();
  const span = spanBetween(label, a, counters());
  return { s: span.wallS, cpu: span.userS + span.sysS, value, span };
}

/** A plain onnxruntime MatMul of the CEILING shape: the reference the prefill (and bench/big-models.ts's LM layer) is divided by. */
export async function ceilingSession(): Promise<{ run: () => Promise<unknown>; dispose: () => Promise<void> }> {
  const { M, K, N } = CEILING;
  const g = new GraphBuilder('matmul_ceiling');
  g.output(g.matmul(g.input('a', 'float32', [M, K]), g.input('b', 'float32', [K, N])), 'y');
  const s = await OrtSession.create(g.build());
  const rnd = mulberry32(5);
  const a = f32([M, K], Float32Array.from({ length: M * K }, () => rnd() - 0.5));
  const b = f32([K, N], Float32Array.from({ length: K * N }, () => rnd() - 0.5));
  return { run: () => s.run({ a, b }), dispose: () => s.dispose() };
}

/** The measuring child: load, then interleave MatMul ceilings and full prefills; then the cached follow-up. */
async function child(modelDir: string, repeats: number): Promise<VlmBenchResult> {
  const loadAvgStart = loadavg();
  const processor = await LlavaOnevisionProcessor.fromPretrained(modelDir);
  const img = noiseImage(IMAGE_SIDE);
  const prep = await promptWithTextTokens(processor, img, TEXT_TOKENS);
  const ids = [Array.from(prep.inputIds.data, Number)];
  const run = prep.tokenMap.runs[0];
  const imageTokens = run.end - run.start;
  const tiles = prep.tilesPerImage[0];
  const pixels = { pixelValues: prep.pixelValues!, imageSizes: prep.imageSizes! };

  const load = await timed(() => LlavaOnevision.load(modelDir), 'load');
  const model = load.value;
  const mm = await ceilingSession();
  try {
    const S = ids[0].length;
    const prefillGflop = (visionFlops(model, tiles) + lmFlops(model.text, S, S)) / 1e9;
    const prefillSeconds: number[] = [], prefillCpuSeconds: number[] = [], ceilingSeconds: number[] = [], ceilingCpuSeconds: number[] = [];
    await mm.run(); // warm-up
    const sustainedCeilingSeconds: number[] = [];
    const prefillSpans: Span[] = [], followUpSpans: Span[] = [], ceilingSpans: Span[] = [];
    let breakdown: BreakdownRow[] = [];
    let breakdownTotal: Span | undefined;
    let last: Awaited<ReturnType<LlavaOnevision['forward']>> | undefined;
    const ceilingBlock = async () => {
      let n = 0;
      const a = counters();
      const t0 = performance.now();
      while (performance.now() - t0 < SUSTAINED_S * 1000) {
        const c = await timed(() => mm.run());
        ceilingSeconds.push(c.s);
        ceilingCpuSeconds.push(c.cpu);
        n++;
      }
      sustainedCeilingSeconds.push((performance.now() - t0) / 1000 / n);
      ceilingSpans.push(spanBetween(`ceiling x${n}`, a, counters()));
    };
    for (let r = 0; r < repeats; r++) {
      await ceilingBlock();
      last = undefined; // let the previous result go before the next prefill
      const rec = startRecording(); // per-session spans: a few counter reads per layer, negligible
      const p = await timed(() => model.forward({ inputIds: ids, ...pixels, taps: KV_TAPS, logitsAt: 'last' }), 'prefill');
      breakdown = groupSpans(rec.stop(), p.span);
      breakdownTotal = p.span;
      last = p.value;
      prefillSeconds.push(p.s);
      prefillCpuSeconds.push(p.cpu);
      prefillSpans.push(p.span);
    }
    await ceilingBlock();
    // Follow-up: the last prefill's cache cut at the end of the image run (what a cached image is: every position up
    // to and including the image), then a new 32-token question continues from it, with the same K/V capture.
    const prefix = truncateCache(last!.cache, run.end);
    const rnd = mulberry32(11);
    const question = [Array.from({ length: TEXT_TOKENS }, () => Math.floor(rnd() * 256))]; // byte-level text ids
    const followUpSeconds: number[] = [];
    for (let i = 0; i < 3; i++) {
      const f = await timed(() => model.continue(prefix, question, { taps: KV_TAPS, logitsAt: 'last' }), 'follow-up');
      followUpSeconds.push(f.s);
      followUpSpans.push(f.span);
    }
    const { M, K, N } = CEILING;
    return {
      machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', loadAvgStart, loadAvgEnd: loadavg() },
      tokens: { image: imageTokens, text: S - imageTokens, total: S, tiles, followUp: TEXT_TOKENS },
      weightBytes: statSync(join(modelDir, 'model.safetensors')).size,
      loadSeconds: load.s,
      prefillSeconds, prefillCpuSeconds, ceilingSeconds, ceilingCpuSeconds, sustainedCeilingSeconds,
      prefillGflop,
      ceilingGflop: (2 * M * K * N) / 1e9,
      followUpSeconds,
      peakRssBytes: peakRssBytes(),
      loadSpan: load.span, prefillSpans, followUpSpans, ceilingSpans,
      breakdown, breakdownTotal: breakdownTotal!,
      mallocTuned: mallocTuned(),
    };
  } finally {
    await mm.dispose();
    await model.dispose();
  }
}

const min = (xs: readonly number[]) => Math.min(...xs);

/**
 * Why a prefill / sustained-ceiling ratio may mean little, each reason in words (none: the figure stands). Under
 * background load the two ceilings disagree and the ratio swings with whatever the other jobs did while the prefill
 * ran. A ratio above 1.05 says the reference was slowed, not that the engine beat MatMul: the ceiling loop allocates a
 * fresh output per call (its page faults are printed beside it) while the prefill reuses its buffers; the ratio to the
 * best single MatMul run is the stricter figure then.
 */
export function unreliableReasons(machine: { cores: number; loadAvgStart: readonly number[]; loadAvgEnd: readonly number[] }, ratio: number, sustained: number, burst: number): string[] {
  const reasons: string[] = [];
  const load = Math.max(machine.loadAvgStart[0], machine.loadAvgEnd[0]);
  if (load > machine.cores) reasons.push(`machine loaded (1-min load average ${load.toFixed(2)} on ${machine.cores} cores)`);
  if (sustained < 0.7 * burst) reasons.push(`sustained ceiling under 0.7 of the best single run (${sustained.toFixed(0)} vs ${burst.toFixed(0)} GFLOP/s)`);
  if (ratio > 1.05) reasons.push('prefill faster than the sustained ceiling: the reference was slowed (see its page faults); read prefill / best single MatMul run');
  return reasons;
}

/** The table rows (figure, target, pass/fail) of a child's result. */
export function vlmRows(r: VlmBenchResult, writeS: number): BenchRow[] {
  const prefill = min(r.prefillSeconds);
  const gflops = r.prefillGflop / prefill;
  const burst = r.ceilingGflop / min(r.ceilingSeconds);
  const ceiling = r.ceilingGflop / min(r.sustainedCeilingSeconds);
  const ratio = gflops / ceiling;
  // The same ratio per CPU-second: insensitive to time slicing by other processes (not a target, a cross-check).
  const cpuRatio = (r.prefillGflop / min(r.prefillCpuSeconds)) / (r.ceilingGflop / min(r.ceilingCpuSeconds));
  const unreliable = unreliableReasons(r.machine, ratio, ceiling, burst);
  const follow = min(r.followUpSeconds);
  const rss = r.peakRssBytes / r.weightBytes;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  const t = r.tokens;
  // The span of the best (fastest) run of each kind: page faults and system time beside the wall time.
  const best = (spans: readonly Span[]) => spans.reduce((a, b) => (b.wallS < a.wallS ? b : a));
  const pf = (sp: Span) => `  [faults ${sp.minorFaults.toLocaleString('en-US')}, sys ${sp.sysS.toFixed(2)} s, cpu ${(sp.userS + sp.sysS).toFixed(1)} s]`;
  const ceilBlock = best(r.ceilingSpans);
  return [
    { metric: 'machine', value: `${r.machine.cores} cores, ${r.machine.cpu}` },
    { metric: 'load average (1/5/15 min) at start / end', value: `${la(r.machine.loadAvgStart)} / ${la(r.machine.loadAvgEnd)}` },
    { metric: 'checkpoint write (f32, 4 KiB aligned)', value: `${writeS.toFixed(1)} s, ${gib(r.weightBytes)}` },
    { metric: 'glibc malloc tunables (src/runtime/malloc.ts)', value: r.mallocTuned ? 'set (as the CLI runs)' : 'NOT set (KVLENS_NO_MALLOC_TUNING=1)' },
    { metric: 'load (vision session + 24 layer sessions)', value: `${r.loadSeconds.toFixed(2)} s${pf(r.loadSpan)}` },
    { metric: 'tokens run (384x384 image, 384 px tiles)', value: `${t.total} = ${t.image} image (${t.tiles} tiles) + ${t.text} text` },
    { metric: `ORT MatMul [${CEILING.M}x${CEILING.K}]x[${CEILING.K}x${CEILING.N}], best single run`, value: `${burst.toFixed(0)} GFLOP/s` },
    { metric: `same, sustained (best ${SUSTAINED_S} s block, interleaved)`, value: `${ceiling.toFixed(0)} GFLOP/s${pf(ceilBlock)}` },
    { metric: 'prefill + K/V capture, all layers (best)', value: `${prefill.toFixed(2)} s, ${r.prefillGflop.toFixed(0)} GFLOP, ${gflops.toFixed(0)} GFLOP/s${pf(best(r.prefillSpans))}` },
    { metric: 'every prefill (s)', value: r.prefillSpans.map((sp) => `${sp.wallS.toFixed(2)} (${sp.minorFaults.toLocaleString('en-US')} faults)`).join(', ') },
    { metric: 'prefill / sustained MatMul ceiling', value: `${ratio.toFixed(2)}${unreliable.length ? ` (UNRELIABLE: ${unreliable.join('; ')})` : ''}`, target: '>= 0.8', ok: ratio >= 0.8 },
    { metric: 'prefill / best single MatMul run', value: (gflops / burst).toFixed(2) },
    { metric: 'same, per CPU-second (cross-check under load)', value: cpuRatio.toFixed(2) },
    { metric: `follow-up ${t.followUp} tokens on the cached image (best)`, value: `${follow.toFixed(3)} s${pf(best(r.followUpSpans))}` },
    { metric: 'follow-up / full prefill', value: (follow / prefill).toFixed(3), target: '<= 0.10', ok: follow / prefill <= 0.1 },
    { metric: 'peak RSS (VmHWM) / weight bytes', value: `${rss.toFixed(2)} (${gib(r.peakRssBytes)})`, target: '<= 1.3', ok: rss <= 1.3 },
  ];
}

/**
 * The measuring child's environment: with kvlens's malloc tunables as the CLI runs (src/runtime/malloc.ts), unless
 * KVLENS_NO_MALLOC_TUNING=1 asks for glibc's defaults (to measure what they cost).
 */
export function childEnv(): NodeJS.ProcessEnv {
  return process.env.KVLENS_NO_MALLOC_TUNING === '1' ? process.env : withMallocTunables();
}

/** Generate the checkpoint, measure in a child process, return the rows and the raw result. */
export async function benchVlm(opts: { repeats?: number; keep?: boolean; log?: (s: string) => void } = {}): Promise<VlmBenchSummary> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const root = mkdtempSync(join(tmpdir(), 'kvlens-bench-vlm-'));
  try {
    log(`writing the LLaVA-OneVision-0.5B-shaped checkpoint to ${root} ...`);
    const t0 = performance.now();
    const model = writeLlavaOnevisionCheckpoint(join(root, 'model'), SPEC);
    const writeS = (performance.now() - t0) / 1000;
    log('measuring (child process) ...');
    const self = fileURLToPath(import.meta.url);
    const args = [...(self.endsWith('.ts') ? ['--import', 'tsx'] : []), self, '--child', model, String(opts.repeats ?? 2)];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 16 * 2 ** 20, stdio: ['ignore', 'pipe', 'inherit'], env: childEnv() });
    if (r.status !== 0) throw new Error(`the VLM bench child failed (status ${r.status}, signal ${r.signal})`);
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as VlmBenchResult;
    return { result, checkpointWriteSeconds: writeS, rows: vlmRows(result, writeS), breakdown: breakdownRows(result.breakdown, result.breakdownTotal) };
  } finally {
    if (!opts.keep) rmSync(root, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    console.log(JSON.stringify(await child(argv[1], Number(argv[2] ?? 2))));
  } else {
    const { printTable } = await import('./common.js');
    const i = argv.indexOf('--repeats');
    const s = await benchVlm({ repeats: i >= 0 ? Number(argv[i + 1]) : 2, keep: argv.includes('--keep') });
    printTable('LLaVA-OneVision-0.5B shape (random weights, CPU): one 384x384 image + 32 text tokens', s.rows);
    printTable('where the last prefill went (wall s, share, system s, minor page faults)', s.breakdown);
  }
}
