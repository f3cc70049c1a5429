// Benchmark at the real shapes of the paper's three 7-8B models (random weights, fp16 on disk):
//   LLaVA-OneVision-7B   SigLIP so400m-patch14-384 (26 layers) + Qwen2-7B (28 layers), one 384x384 image;
//   Qwen2.5-VL-7B        ViT 32 blocks (window attention, full blocks 7/15/23/31) + Qwen2-7B-shaped LM with M-RoPE,
//                        one 448x448 image (default min/max pixels: 32x32 patches -> 256 merged tokens);
//   Llama-3-LLaVA-NeXT-8B CLIP ViT-L/14-336 (24 layers, feature layer -2) + Llama-3-8B (32 layers), one 336x336 image
//                        (anyres picks the 2x2 canvas: 576 base + 48 x 49 grid tokens).
// Each prompt has about 32 text tokens around the image; the tables give the counts actually run.
//
// A whole model does not fit a 24 GiB machine (the engine holds f32 weights: ~30 GB for a 7B LM), so each model is
// written with its full vision tower but only K of its N language-model layers. Two child processes (each one's
// peak RSS is its own) load that checkpoint as a 1-layer and a K-layer model (same weights, config edited) and
// time, per image: the vision tower + projector alone, and the full forward with every layer's K and V captured.
// and the language model alone on the same embeddings. One layer's cost is the K-layer LM time / K; everything else
// (vision, packing, embeddings, head) is the 1-layer forward minus one layer. Then, for the real N:
//   one layer's capture at L = N/2   = rest + (L + 1) layers   (later layers are not needed)
//   all layers' capture               = rest + N layers
//   peak RSS                          = peak(1 layer) + (N - 1) x per-layer peak increment      (ESTIMATED)
// Where the estimated peak fits in 75% of the machine's memory the whole model is also written and run for real
// (that happens with --tiny, which runs the same path on the families' tiny specs and checks the extrapolation).
//
//   npx tsx bench/big-models.ts [--models ov,qwen,next] [--lm-layers 2] [--repeats 2] [--tiny] [--keep]
//   npm run bench -- --only big [--tiny]
//
// Each child also times a plain MatMul (bench/vlm.ts's ceiling shape) in sustained blocks between its forwards, and the
// table gives one LM layer's GFLOP/s as a ratio to it: the same-run ceiling ratio of the vlm section, for every family.

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/models/index.js';
import { loadProcessor, type PreparedInputs } from '../src/preprocess/load.js';
import type { RgbImage } from '../src/preprocess/image.js';
import { LLAVA_ONEVISION_7B, TINY_LLAVA_ONEVISION, writeLlavaOnevisionCheckpoint } from '../src/models/synthetic/llava-onevision.js';
import { LLAVA_NEXT_LLAMA3_8B, TINY_LLAVA_NEXT, writeLlavaNextCheckpoint } from '../src/models/synthetic/llava-next.js';
import { QWEN2_5_VL_7B, TINY_QWEN2_5_VL, writeQwen2VlCheckpoint } from '../src/models/synthetic/qwen2-vl.js';
import type { DecoderLM } from '../src/models/lm/decoder.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { mulberry32 } from '../src/util/random.js';
import { CEILING_GFLOP, ceilingSession, lmFlops } from './vlm.js';
import { peakRssBytes, type BenchRow } from './common.js';

const TEXT_TOKENS = 32;
/** Seconds per sustained MatMul-ceiling block in each child (bench/vlm.ts uses 4 s blocks too). */
const CEILING_BLOCK_S = 4;
const KV_TAPS = ['lm.*.attn.k', 'lm.*.attn.v'];
/** Run the whole model for real when its estimated peak is below this share of the machine's memory. */
const FITS_SHARE = 0.75;

type Writer = (dir: string, lmLayers: number) => string;

interface BigModel {
  readonly key: 'ov' | 'qwen' | 'next';
  readonly name: string;
  readonly lmLayers: number;
  readonly visionLayers: number;
  readonly imageSide: number;
  readonly write: Writer;
}

const withLayers = <S extends { readonly text: { readonly layers: number } }>(s: S, n: number): S => ({ ...s, text: { ...s.text, layers: n } });

/** The three paper models at their real shapes (fp16), or (tiny) the same families at their tiny test shapes in fp16. */
export function bigModels(tiny: boolean): BigModel[] {
  const ov = tiny ? { ...TINY_LLAVA_ONEVISION, dtype: 'float16' as const } : LLAVA_ONEVISION_7B;
  const qw = tiny ? { ...TINY_QWEN2_5_VL, dtype: 'float16' as const } : QWEN2_5_VL_7B;
  const nx = tiny ? { ...TINY_LLAVA_NEXT, dtype: 'float16' as const } : LLAVA_NEXT_LLAMA3_8B;
  return [
    { key: 'ov', name: tiny ? 'LLaVA-OneVision (tiny)' : 'LLaVA-OneVision-7B', lmLayers: ov.text.layers, visionLayers: ov.vision.layers,
      imageSide: ov.vision.image, write: (d, n) => writeLlavaOnevisionCheckpoint(d, withLayers(ov, n)) },
    { key: 'qwen', name: tiny ? 'Qwen2.5-VL (tiny)' : 'Qwen2.5-VL-7B', lmLayers: qw.text.layers, visionLayers: qw.vision.depth,
      imageSide: tiny ? 112 : 448, write: (d, n) => writeQwen2VlCheckpoint(d, withLayers(qw, n)) },
    { key: 'next', name: tiny ? 'LLaVA-NeXT Llama-3 (tiny)' : 'Llama-3-LLaVA-NeXT-8B', lmLayers: nx.text.layers, visionLayers: nx.vision.layers,
      imageSide: nx.vision.image, write: (d, n) => writeLlavaNextCheckpoint(d, withLayers(nx, n)) },
  ];
}

/** What one child measures (seconds, bytes). */
export interface ChildResult {
  readonly lmLayers: number;
  readonly tokens: { total: number; image: number; text: number };
  readonly loadSeconds: number;
  /** vision tower + projector + packing, each run */
  readonly visionSeconds: number[];
  /** full forward (vision + LM prefill, every layer's K/V tapped), each run */
  readonly forwardSeconds: number[];
  /** the language model alone on the same embeddings (prefill of all its layers + head at one position), each run */
  readonly lmSeconds: number[];
  /** matmul + attention GFLOP of one LM layer's prefill at this token count */
  readonly layerGflop: number;
  readonly peakRssBytes: number;
  readonly loadAvg: number[];
  /** seconds per plain MatMul (bench/vlm.ts's ceiling shape), one sustained block before each repeat and one after */
  readonly ceilingSeconds?: number[];
}

/** The extrapolation to N layers from a 1-layer and a K-layer measurement. */
export interface Extrapolation {
  readonly perLayerSeconds: number;
  /** everything but the LM layers: vision, packing, embeddings, head, per-call overhead */
  readonly restSeconds: number;
  readonly oneLayerAt: number;
  readonly oneLayerSeconds: number;
  readonly allLayersSeconds: number;
  readonly perLayerPeakBytes: number;
  readonly peakBytes: number;
}

type Measured = Pick<ChildResult, 'lmLayers' | 'forwardSeconds' | 'lmSeconds' | 'peakRssBytes'>;

/**
 * Time: one layer = the K-layer child's LM-alone time / K (its head at one position is ~0.1% of a layer; an upper
 * bound); the rest = the 1-layer child's full forward minus one layer. A difference of two full forwards would be
 * the cleaner per-layer figure, but under background load the vision tower's noise swamps it.
 * Memory: the per-layer increment of the two children's peak RSS (not noisy: weights dominate).
 */
export function extrapolate(one: Measured, k: Measured, layers: number): Extrapolation {
  const dk = k.lmLayers - one.lmLayers;
  if (!(dk > 0)) throw new Error(`extrapolate: need two layer counts, got ${one.lmLayers} and ${k.lmLayers}`);
  const perLayerSeconds = Math.min(...k.lmSeconds) / k.lmLayers;
  const restSeconds = Math.max(0, Math.min(...one.forwardSeconds) - one.lmLayers * perLayerSeconds);
  const oneLayerAt = Math.floor(layers / 2);
  const perLayerPeakBytes = Math.max(0, (k.peakRssBytes - one.peakRssBytes) / dk);
  return {
    perLayerSeconds,
    restSeconds,
    oneLayerAt,
    oneLayerSeconds: restSeconds + (oneLayerAt + 1) * perLayerSeconds,
    allLayersSeconds: restSeconds + layers * perLayerSeconds,
    perLayerPeakBytes,
    peakBytes: one.peakRssBytes + (layers - one.lmLayers) * perLayerPeakBytes,
  };
}

// ---------------------------------------------------------------- child

function noiseImage(side: number): RgbImage {
  const rnd = mulberry32(3);
  const data = new Uint8Array(side * side * 3);
  for (let i = 0; i < data.length; i++) data[i] = ((i % (3 * side)) / 6 + rnd() * 60) & 255;
  return { width: side, height: side, data };
}

/** The shortest question giving at least `want` text tokens (the generated byte-level BPE spends ~1 token per 1-2 chars). */
async function promptWithTextTokens(dir: string, img: RgbImage, want: number): Promise<PreparedInputs> {
  const p = await loadProcessor(dir);
  const sentence = 'What objects are visible here, and where is each one placed relative to the others in this picture? '.repeat(4);
  let out: PreparedInputs | undefined;
  for (let n = 1; n <= sentence.length; n++) {
    out = await p.prepare({ images: [img], question: sentence.slice(0, n), systemPrompt: null });
    if (textTokens(out) >= want) return out;
  }
  return out!;
}

function textTokens(p: PreparedInputs): number {
  return p.tokenMap.length - p.tokenMap.runs.reduce((a, r) => a + r.end - r.start, 0);
}

async function timed<T>(f: () => Promise<T>): Promise<{ s: number; value: T }> {
  const t0 = performance.now();
  const value = await f();
  return { s: (performance.now() - t0) / 1000, value };
}

/** What all three families have beyond KvlensModel (LlavaOnevision, LlavaNext, Qwen2Vl). */
interface WithImageFeatures {
  imageFeatures(pixelValues: Tensor, sizesOrGrid: Tensor): Promise<{ packed: Tensor<'float32'> }>;
  embedWithImages(inputIds: number[][], packed?: Tensor<'float32'>): Tensor<'float32'>;
  readonly lm: DecoderLM;
}

async function child(dir: string, side: number, repeats: number): Promise<ChildResult> {
  const prep = await promptWithTextTokens(dir, noiseImage(side), TEXT_TOKENS);
  const load = await timed(() => loadModel(dir));
  const model = load.value;
  const mm = await ceilingSession();
  try {
    await mm.run(); // warm-up
    const ceilingSeconds: number[] = [];
    // The same-run reference: sustained MatMul blocks interleaved with the forwards, as the vlm section does.
    const ceilingBlock = async () => {
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < CEILING_BLOCK_S * 1000) { await mm.run(); n++; }
      ceilingSeconds.push((performance.now() - t0) / 1000 / n);
    };
    const vis = model as unknown as WithImageFeatures;
    const sizes = (prep.imageGridThw ?? prep.imageSizes)!;
    const req = {
      inputIds: prep.inputIds, pixelValues: prep.pixelValues,
      ...(prep.imageGridThw ? { imageGridThw: prep.imageGridThw } : { imageSizes: prep.imageSizes }),
      taps: KV_TAPS, logitsAt: 'last' as const,
    };
    const visionSeconds: number[] = [];
    const forwardSeconds: number[] = [];
    const lmSeconds: number[] = [];
    const ids = [Array.from(prep.inputIds.data, Number)];
    for (let r = 0; r < repeats; r++) {
      await ceilingBlock();
      const v = await timed(() => vis.imageFeatures(prep.pixelValues!, sizes));
      visionSeconds.push(v.s);
      // [1, pos, dModel]; Qwen2.5-VL runs here with 1-D positions on all three M-RoPE axes (same cost as its real ids)
      const inputsEmbeds = vis.embedWithImages(ids, v.value.packed);
      // The full forward first: it warms the layer sessions (a first run costs seconds more per 7B layer).
      forwardSeconds.push((await timed(() => model.forward(req))).s);
      lmSeconds.push((await timed(() => vis.lm.forward({ inputsEmbeds, taps: KV_TAPS, logitsAt: 'last' }))).s);
    }
    await ceilingBlock();
    const S = prep.tokenMap.length;
    const cfg = vis.lm.config;
    const layerGflop = (lmFlops({ ...cfg, numLayers: 1 }, S, S) - 2 * cfg.hiddenSize * cfg.vocabSize) / 1e9;
    const text = textTokens(prep);
    return {
      lmLayers: model.dims.lmLayers,
      tokens: { total: S, image: S - text, text },
      loadSeconds: load.s, visionSeconds, forwardSeconds, lmSeconds, layerGflop,
      peakRssBytes: peakRssBytes(),
      loadAvg: loadavg(),
      ceilingSeconds,
    };
  } finally {
    await mm.dispose();
    await model.dispose();
  }
}

// ---------------------------------------------------------------- parent

/** A view of checkpoint `src` whose config says `layers` LM layers (same weights, symlinked). */
function variantDir(src: string, dst: string, layers: number): string {
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(src)) {
    if (f.endsWith('.safetensors')) symlinkSync(join(src, f), join(dst, f));
    else copyFileSync(join(src, f), join(dst, f));
  }
  const cfg = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  const text = cfg.text_config as Record<string, unknown> | undefined;
  if (text) text.num_hidden_layers = layers;
  else {
    cfg.num_hidden_layers = layers;
    if ('max_window_layers' in cfg) cfg.max_window_layers = layers;
  }
  writeFileSync(join(dst, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  return dst;
}

function runChild(dir: string, side: number, repeats: number): ChildResult {
  const self = fileURLToPath(import.meta.url);
  const args = [...(self.endsWith('.ts') ? ['--import', 'tsx'] : []), self, '--child', dir, String(side), String(repeats)];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 16 * 2 ** 20, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`big-model bench child for ${dir} failed (status ${r.status}, signal ${r.signal})`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
}

export interface BigModelResult {
  readonly model: string;
  readonly lmLayers: number;
  readonly visionLayers: number;
  readonly imageSide: number;
  readonly checkpointLmLayers: number;
  readonly checkpointBytes: number;
  readonly writeSeconds: number;
  readonly runs: ChildResult[];
  readonly estimate: Extrapolation;
  /** the whole model run for real (only where it fits) */
  readonly full?: ChildResult;
  readonly underLoad: boolean;
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
}

export async function benchBigModel(m: BigModel, opts: { lmLayers: number; repeats: number; keep?: boolean; log: (s: string) => void }): Promise<BigModelResult> {
  const K = Math.min(opts.lmLayers, m.lmLayers);
  if (K < 2) throw new Error('--lm-layers: at least 2 (the per-layer cost is a difference between two layer counts)');
  const root = mkdtempSync(join(tmpdir(), `kvlens-bench-big-${m.key}-`));
  try {
    opts.log(`${m.name}: writing ${K} of ${m.lmLayers} LM layers + the full vision tower (fp16) to ${root} ...`);
    const t0 = performance.now();
    const base = m.write(join(root, `lm${K}`), K);
    const writeSeconds = (performance.now() - t0) / 1000;
    const runs: ChildResult[] = [];
    for (const k of [1, K]) {
      opts.log(`${m.name}: measuring with ${k} LM layer${k > 1 ? 's' : ''} (child process) ...`);
      runs.push(runChild(variantDir(base, join(root, `view${k}`), k), m.imageSide, opts.repeats));
    }
    const estimate = extrapolate(runs[0], runs[1], m.lmLayers);
    let full: ChildResult | undefined;
    if (estimate.peakBytes < FITS_SHARE * totalmem()) {
      opts.log(`${m.name}: the whole model fits (estimated peak ${gib(estimate.peakBytes)}): writing and running it ...`);
      rmSync(base, { recursive: true, force: true });
      full = runChild(m.write(join(root, 'full'), m.lmLayers), m.imageSide, opts.repeats);
    }
    const underLoad = runs.some((r) => r.loadAvg[0] > cpus().length * 0.75) || loadavg()[0] > cpus().length * 0.75;
    return {
      model: m.name, lmLayers: m.lmLayers, visionLayers: m.visionLayers, imageSide: m.imageSide, checkpointLmLayers: K,
      checkpointBytes: full ? dirBytes(join(root, 'full')) : dirBytes(base), writeSeconds, runs, estimate, ...(full ? { full } : {}), underLoad,
    };
  } finally {
    if (!opts.keep) rmSync(root, { recursive: true, force: true });
  }
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
const best = (xs: readonly number[]) => Math.min(...xs);

/**
 * One LM layer's GFLOP/s over the sustained MatMul ceiling measured in the same child (the K-layer one, whose LM time
 * gives the per-layer figure): the vlm section's ratio, per family. Absent from results written before the row existed.
 */
function ceilingRow(layerGflops: number, ceilingSeconds: readonly number[] | undefined, underLoad: boolean): BenchRow[] {
  if (!ceilingSeconds?.length) return [];
  const ceiling = CEILING_GFLOP / Math.min(...ceilingSeconds);
  return [{ metric: 'one LM layer / sustained MatMul ceiling (same run)', value: `${(layerGflops / ceiling).toFixed(2)} (${layerGflops.toFixed(0)} vs ${ceiling.toFixed(0)} GFLOP/s${underLoad ? ', UNRELIABLE: machine loaded' : ''})` }];
}

export function bigModelRows(r: BigModelResult): BenchRow[] {
  const [one, k] = r.runs;
  const e = r.estimate;
  const t = one.tokens;
  const N = r.lmLayers;
  const vision = Math.min(best(one.visionSeconds), best(k.visionSeconds));
  const mem = totalmem();
  const rows: BenchRow[] = [
    { metric: 'checkpoint (fp16, random weights)', value: r.full ? `all ${N} LM layers, ${gib(r.checkpointBytes)}, ${r.writeSeconds.toFixed(0)} s to write` : `${r.checkpointLmLayers} of ${N} LM layers + all ${r.visionLayers} vision layers, ${gib(r.checkpointBytes)}, ${r.writeSeconds.toFixed(0)} s to write` },
    { metric: `tokens (one ${r.imageSide}x${r.imageSide} image)`, value: `${t.total} = ${t.image} image + ${t.text} text` },
    { metric: `load, 1 / ${k.lmLayers} LM layers`, value: `${one.loadSeconds.toFixed(1)} / ${k.loadSeconds.toFixed(1)} s` },
    { metric: `vision tower + projector (all ${r.visionLayers} layers, measured)`, value: `${vision.toFixed(2)} s (${(vision / r.visionLayers).toFixed(3)} s/layer incl. projector)` },
    { metric: `forward + all K/V, 1 / ${k.lmLayers} LM layers (measured, best)`, value: `${best(one.forwardSeconds).toFixed(2)} / ${best(k.forwardSeconds).toFixed(2)} s` },
    { metric: `LM alone, ${k.lmLayers} layers + head (measured, best)`, value: `${best(k.lmSeconds).toFixed(2)} s` },
    { metric: `one LM layer prefill + K/V, ${t.total} tokens`, value: `${e.perLayerSeconds.toFixed(2)} s, ${one.layerGflop.toFixed(0)} GFLOP, ${(one.layerGflop / e.perLayerSeconds).toFixed(0)} GFLOP/s` },
    ...ceilingRow(one.layerGflop / e.perLayerSeconds, k.ceilingSeconds, r.underLoad),
    { metric: 'rest (vision, packing, embeddings, head)', value: `${e.restSeconds.toFixed(2)} s` },
    { metric: `per image, one layer's capture (layer ${e.oneLayerAt} of ${N})`, value: `${e.oneLayerSeconds.toFixed(1)} s (estimated)` },
    { metric: `per image, all ${N} layers' capture`, value: `${e.allLayersSeconds.toFixed(1)} s (estimated)` },
    { metric: `peak RSS, 1 / ${k.lmLayers} LM layers (measured)`, value: `${gib(one.peakRssBytes)} / ${gib(k.peakRssBytes)}` },
    { metric: 'peak RSS per LM layer (f32 weights in the engine + mapped fp16 pages)', value: gib(e.perLayerPeakBytes) },
    { metric: `peak RSS, all ${N} layers`, value: `${gib(e.peakBytes)} (ESTIMATED; machine has ${gib(mem)}${e.peakBytes < FITS_SHARE * mem ? '' : ': does not fit'})` },
  ];
  if (r.full) {
    const f = r.full;
    rows.push(
      { metric: `per image, all ${N} layers' capture (whole model, measured)`, value: `${best(f.forwardSeconds).toFixed(2)} s (estimate ${(e.allLayersSeconds / best(f.forwardSeconds)).toFixed(2)}x)` },
      { metric: `peak RSS, all ${N} layers (whole model, measured)`, value: `${gib(f.peakRssBytes)} (estimate ${(e.peakBytes / f.peakRssBytes).toFixed(2)}x)` },
    );
  }
  if (r.underLoad) rows.push({ metric: 'note', value: 'timings taken under background load (1-min load average above 0.75 x cores)' });
  return rows;
}

export async function benchBigModels(opts: { models?: readonly string[]; lmLayers?: number; repeats?: number; tiny?: boolean; keep?: boolean; log?: (s: string) => void } = {}): Promise<BigModelResult[]> {
  const all = bigModels(opts.tiny ?? false);
  const want = opts.models ?? all.map((m) => m.key);
  for (const w of want) if (!all.some((m) => m.key === w)) throw new Error(`--models: unknown model "${w}" (use ${all.map((m) => m.key).join(', ')})`);
  const out: BigModelResult[] = [];
  for (const m of all.filter((x) => want.includes(x.key))) {
    out.push(await benchBigModel(m, { lmLayers: opts.lmLayers ?? 2, repeats: opts.repeats ?? 2, keep: opts.keep, log: opts.log ?? ((s) => console.error(s)) }));
  }
  return out;
}

export function bigModelTitle(r: BigModelResult): string {
  return `${r.model} shape (random weights, fp16 on disk, f32 in the engine, CPU)`;
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    console.log(JSON.stringify(await child(argv[1], Number(argv[2]), Number(argv[3] ?? 2))));
  } else {
    const val = (f: string) => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined; };
    const { printTable } = await import('./common.js');
    const results = await benchBigModels({
      models: val('--models')?.split(',').filter(Boolean), lmLayers: Number(val('--lm-layers') ?? 2), repeats: Number(val('--repeats') ?? 2),
      tiny: argv.includes('--tiny'), keep: argv.includes('--keep'),
    });
    for (const r of results) printTable(bigModelTitle(r), bigModelRows(r));
  }
}
