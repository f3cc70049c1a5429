// Test helper: a realistic synthetic run directory (every file of docs/run-dir.md present, numbers generated from a seed)
// so report/viewer tests do not wait for the experiment runner. Curves build then drop across layers, key variances
// are bimodal with low-variance positions concentrated in late layers, benchmarks improve slightly under blocking.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from 'fast-png';
import { Rng } from '../../src/util/random.js';
import { RUN_FILES, writeImageFiles, writeRun } from '../../src/results/rundir.js';
import type { Benchmarks, KeyVariance, Manifest, PrefixResults, ProbeRow, Underutil } from '../../src/results/schema.js';

export interface SyntheticRunOptions {
  seed?: number;
  layers?: number;
  gridRows?: number;
  gridCols?: number;
  /** Relative paths (RUN_FILES values) to leave out. */
  omit?: string[];
  /** Image ids that get per-image masks/attention files. */
  imageIds?: string[];
}

export interface SyntheticRun {
  dir: string;
  manifest: Manifest;
  probes: ProbeRow[];
  keyVariance: KeyVariance;
  benchmarks: Benchmarks;
  prefix: PrefixResults;
  underutil: Underutil;
}

export const MME_SUBTASKS: [string, 'perception' | 'cognition'][] = [
  ['existence', 'perception'], ['count', 'perception'], ['position', 'perception'], ['color', 'perception'], ['posters', 'perception'],
  ['celebrity', 'perception'], ['scene', 'perception'], ['landmark', 'perception'], ['artwork', 'perception'], ['OCR', 'perception'],
  ['commonsense_reasoning', 'cognition'], ['numerical_calculation', 'cognition'], ['text_translation', 'cognition'], ['code_reasoning', 'cognition'],
];
export const BLINK_SUBTASKS: [string, number][] = [
  ['Art_Style', 117], ['Counting', 120], ['Forensic_Detection', 132], ['Functional_Correspondence', 130], ['IQ_Test', 150], ['Jigsaw', 150],
  ['Multi-view_Reasoning', 133], ['Object_Localization', 122], ['Relative_Depth', 124], ['Relative_Reflectance', 134],
  ['Semantic_Correspondence', 139], ['Spatial_Relation', 143], ['Visual_Correspondence', 172], ['Visual_Similarity', 135],
];

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));
const round = (v: number, d = 4) => Math.round(v * 10 ** d) / 10 ** d;

/** A build-then-drop curve: a bump peaking at `peak` layers plus seeded noise. */
function curveValue(rng: Rng, layer: number, peak: number, top: number, layers: number): number {
  const width = layers / 3;
  return clamp01(round(top * (0.55 + 0.45 * Math.exp(-((layer - peak) ** 2) / (2 * width * width))) + 0.01 * rng.normal()));
}

function makeProbes(rng: Rng, layers: number, seeds: number[]): ProbeRow[] {
  const rows: ProbeRow[] = [];
  const tasks = [
    { task: 'pascal5i', metric: 'mIoU', peak: Math.round(layers * 0.5), top: 0.62, n: 1000 },
    { task: 'pascal5i', metric: 'FB-IoU', peak: Math.round(layers * 0.5), top: 0.71, n: 1000 },
    { task: 'spair', metric: 'PCK@0.1', peak: Math.round(layers * 0.3), top: 0.41, n: 4000 },
    { task: 'davis', metric: 'J&F', peak: Math.round(layers * 0.3), top: 0.55, n: 30 },
  ];
  const models: [string, string[]][] = [['llava-onevision-7b', ['lm.{L}.attn.v', 'lm.{L}.attn.k']], ['qwen2.5-vl-7b', ['lm.{L}.attn.v']]];
  for (const t of tasks) {
    for (const [model, taps] of models) {
      for (const seed of seeds) {
        for (const [ti, tap] of taps.entries()) {
          for (let l = 0; l < layers; l++) {
            const top = t.top * (ti === 0 ? 1 : 0.85) * (model.startsWith('qwen') ? 0.95 : 1);
            rows.push({ task: t.task, model, tap: tap.replace('{L}', String(l)), layer: l, metric: t.metric, value: curveValue(rng, l, t.peak + ti, top, layers), n: t.n, seed });
          }
        }
        rows.push({ task: t.task, model, tap: 'projector.out', layer: null, metric: t.metric, value: round(t.top * 0.6 + 0.01 * rng.normal()), n: t.n, seed });
        if (!model.startsWith('qwen')) {
          rows.push({ task: t.task, model, tap: 'siglip.post_norm', layer: null, metric: t.metric, value: round(t.top * (t.task === 'spair' ? 1.1 : 0.8) + 0.01 * rng.normal()), n: t.n, seed });
        }
      }
    }
  }
  return rows;
}

function histogramOf(values: number[], bins: number, lo: number, hi: number): { edges: number[]; counts: number[] } {
  const edges = Array.from({ length: bins + 1 }, (_, i) => round(lo + ((hi - lo) * i) / bins, 3));
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * bins)))]++;
  return { edges, counts };
}

function makeKeyVariance(rng: Rng, layers: number, rows: number, cols: number): KeyVariance {
  const n = rows * cols;
  const threshold = 450;
  const sinkPositions = rng.sample(n, Math.max(2, Math.round(n * 0.04))).sort((a, b) => a - b);
  const perLayer = Array.from({ length: layers }, (_, layer) => {
    const late = layer >= layers - 10;
    const variance = Array.from({ length: n }, (_, p) => {
      const agnostic = late && sinkPositions.includes(p);
      return round(Math.max(5, agnostic ? 120 + 60 * rng.normal() : 950 + 160 * rng.normal()), 2);
    });
    return {
      layer, variance, histogram: histogramOf(variance, 30, 0, 1600),
      inputAgnostic: variance.map((v, p) => (v < threshold ? p : -1)).filter((p) => p >= 0),
    };
  });
  return {
    model: 'llava-onevision-7b', tap: 'lm.{L}.attn.k', statistic: 'sum', nImages: 1000, imageSource: 'coco val2017 (first 1000 ids)',
    grid: { rows, cols }, threshold: { value: threshold, method: 'bimodal-valley', note: 'lowest histogram bin between the two main peaks' },
    blockedLayers: Array.from({ length: Math.min(10, layers) }, (_, i) => layers - Math.min(10, layers) + i), layers: perLayer,
  };
}

function popeSplits(rng: Rng, bump: number) {
  return ['random', 'popular', 'adversarial'].map((split, i) => {
    const precision = clamp01(round(0.9 - 0.04 * i + bump + 0.005 * rng.normal()));
    const recall = clamp01(round(0.75 + bump + 0.005 * rng.normal()));
    return { split, n: 3000, accuracy: clamp01(round(0.83 - 0.03 * i + bump)), precision, recall, f1: round((2 * precision * recall) / (precision + recall)),
      yesRatio: clamp01(round(0.42 + 0.01 * i)), unparsedRate: round(0.002 * (i + 1)) };
  });
}

function makeBenchmarks(rng: Rng): Benchmarks {
  // Per-subtask base levels shared by all conditions, so conditions differ by a small effect plus noise.
  const mmeBase = MME_SUBTASKS.map(() => 0.7 + 0.2 * rng.uniform());
  const blinkBase = BLINK_SUBTASKS.map(() => 0.35 + 0.4 * rng.uniform());
  const cond = (name: string, bump: number, layers?: number[], positions?: number) => {
    const subtasks = MME_SUBTASKS.map(([name, category], i) => {
      const acc = clamp01(round(mmeBase[i] + 0.02 * rng.normal() + bump));
      const accPlus = clamp01(round(acc - 0.25 + 0.02 * rng.normal()));
      return { name, category, acc, accPlus, score: round(100 * (acc + accPlus), 2) };
    });
    const sum = (c: string) => round(subtasks.filter((s) => s.category === c).reduce((a, s) => a + s.score, 0), 2);
    const blinkSubs = BLINK_SUBTASKS.map(([name, n], i) => ({ name, n, accuracy: round(Math.round(n * clamp01(blinkBase[i] + 0.02 * rng.normal() + bump)) / n) }));
    const total = blinkSubs.reduce((a, s) => a + s.n, 0);
    return {
      name, ...(layers ? { blockedLayers: layers } : {}), ...(positions !== undefined ? { blockedPositions: positions } : {}),
      pope: { parser: 'lmms-exact', splits: popeSplits(rng, bump) },
      mme: { subtasks, perception: sum('perception'), cognition: sum('cognition') },
      blink: { subtasks: blinkSubs, macro: round(blinkSubs.reduce((a, s) => a + s.accuracy, 0) / blinkSubs.length),
        micro: round(blinkSubs.reduce((a, s) => a + s.accuracy * s.n, 0) / total), unparsedRate: 0.004 },
    };
  };
  return { model: 'llava-onevision-7b', conditions: [cond('none', 0), cond('block-input-agnostic', 0.02, [18, 19, 20, 21, 22, 23, 24, 25, 26, 27], 6), cond('block-random', -0.005, [18, 19, 20, 21, 22, 23, 24, 25, 26, 27], 6)] };
}

function makePrefix(rng: Rng, layers: number): PrefixResults {
  const conds: [string, string, number][] = [['none', '', 0], ['correct', 'A photo of a night highway scene.', 0.05], ['random', 'Xq plomb vert nuance.', -0.02], ['incorrect', 'A photo of a daytime city street.', -0.03]];
  return {
    conditions: conds.map(([name, prefix, bump]) => ({
      name, prefix,
      rows: Array.from({ length: layers }, (_, l) => ({ task: 'bdd10k-night-highway', model: 'llava-onevision-7b', tap: `lm.${l}.attn.v`, layer: l, metric: 'mIoU',
        value: clamp01(round(curveValue(rng, l, Math.round(layers / 2), 0.634, layers) + bump)), n: 200, seed: 0 })),
    })),
  };
}

function makeUnderutil(): Underutil {
  return {
    model: 'llava-onevision-7b', tap: 'lm.{L}.attn.v', rule: 'mean-pooled image values, candidate with the higher cosine to the reference', layerChoice: 'oracle-best',
    subtasks: [
      { name: 'Art_Style', layer: 14, table: { valueRightMlmRight: 52, valueRightMlmWrong: 39, valueWrongMlmRight: 15, valueWrongMlmWrong: 11 } },
      { name: 'Visual_Similarity', layer: 12, table: { valueRightMlmRight: 70, valueRightMlmWrong: 28, valueWrongMlmRight: 20, valueWrongMlmWrong: 17 } },
    ],
  };
}

/** A w x h RGB PNG with a seeded pattern and a filled disc (a stand-in for a predicted mask picture). */
export function syntheticPng(rng: Rng, w: number, h: number): Uint8Array {
  const data = new Uint8Array(w * h * 3);
  const cx = w * (0.3 + 0.4 * rng.uniform());
  const cy = h * (0.3 + 0.4 * rng.uniform());
  const base = [rng.int(200), rng.int(200), rng.int(200)];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inside = (x - cx) ** 2 + (y - cy) ** 2 < (Math.min(w, h) / 4) ** 2;
      const o = (y * w + x) * 3;
      data[o] = inside ? 230 : base[0] + ((x * 3) % 50);
      data[o + 1] = inside ? 60 : base[1] + ((y * 5) % 50);
      data[o + 2] = inside ? 60 : base[2];
    }
  }
  return encode({ width: w, height: h, data, channels: 3, depth: 8 });
}

export async function writeSyntheticRun(dir: string, opts: SyntheticRunOptions = {}): Promise<SyntheticRun> {
  const rng = new Rng(opts.seed ?? 7);
  const layers = opts.layers ?? 28;
  const rows = opts.gridRows ?? 12;
  const cols = opts.gridCols ?? 12;
  const omit = new Set(opts.omit ?? []);
  const manifest: Manifest = {
    experiment: 'synthetic-paper-replication', kvlensVersion: '0.1.0', createdAt: '2026-01-01T00:00:00.000Z',
    models: [
      { id: 'llava-onevision-7b', revision: 'abc123', configHash: 'sha256:0f3a', lmLayers: layers, visionLayers: 26 },
      { id: 'qwen2.5-vl-7b', configHash: 'sha256:77b1', lmLayers: layers },
    ],
    datasets: [{ name: 'pascal5i', split: 'val', hash: 'md5:11aa', count: 1000 }, { name: 'coco', split: 'val2017', hash: 'md5:22bb', count: 1000 }],
    prompts: { extraction: '<|im_start|>user\n<image>\n<|im_end|>', pope: '<|im_start|>user\n<image>\nIs there a {object} in the image?\nAnswer the question using a single word or phrase.<|im_end|>' },
    seeds: [0, 1], dtype: 'bfloat16', device: 'cpu', timings: { extract: 812.4, probe: 95.1, benchmarks: 3402.7 },
  };
  const probes = makeProbes(rng, layers, manifest.seeds);
  const keyVariance = makeKeyVariance(rng, layers, rows, cols);
  const benchmarks = makeBenchmarks(rng);
  const prefix = makePrefix(rng, layers);
  const underutil = makeUnderutil();
  await mkdir(dir, { recursive: true });
  await writeRun.manifest(dir, manifest);
  if (!omit.has(RUN_FILES.probesJson)) await writeRun.probes(dir, probes);
  if (!omit.has(RUN_FILES.keyVariance)) await writeRun.keyVariance(dir, keyVariance);
  if (!omit.has(RUN_FILES.benchmarks)) await writeRun.benchmarks(dir, benchmarks);
  if (!omit.has(RUN_FILES.prefix)) await writeRun.prefix(dir, prefix);
  if (!omit.has(RUN_FILES.underutil)) await writeRun.underutil(dir, underutil);
  if (!omit.has(RUN_FILES.samplesDir)) {
    await mkdir(join(dir, RUN_FILES.samplesDir), { recursive: true });
    const samples = [
      { file: 'pascal5i-mask-0.png', title: 'Pascal-5i episode 0: predicted vs true mask', kind: 'mask' as const, task: 'pascal5i' },
      { file: 'spair-corr-0.png', title: 'SPair: keypoint correspondences', kind: 'correspondence' as const, task: 'spair' },
      { file: 'davis-bike-00010.png', title: 'DAVIS bike-packing frame 10', kind: 'video' as const, task: 'davis', caption: 'propagated mask' },
    ];
    for (const s of samples) await writeFile(join(dir, RUN_FILES.samplesDir, s.file), syntheticPng(rng, 96, 64));
    await writeRun.samplesIndex(dir, { samples });
  }
  for (const imageId of opts.imageIds ?? []) {
    const n = rows * cols;
    const truth = Array.from({ length: n }, (_, p) => (Math.hypot(Math.floor(p / cols) - rows / 2, (p % cols) - cols / 2) < rows / 3 ? 1 : 0));
    const layersMap: Record<string, number[]> = {};
    for (let l = 0; l < layers; l++) layersMap[String(l)] = truth.map((t) => clamp01(round(t * 0.7 + 0.15 + 0.1 * rng.normal(), 3)));
    await writeImageFiles.mask(dir, { imageId, task: 'pascal5i', grid: { rows, cols }, truth, layers: layersMap });
    const tokens = ['Is', ' there', ' a', ' dog', '?'];
    const att: Record<string, number[][]> = {};
    for (let l = 0; l < layers; l += 1) {
      att[String(l)] = tokens.map(() => {
        const raw = Array.from({ length: n }, () => rng.uniform() ** 4);
        const s = raw.reduce((a, b) => a + b, 0);
        return raw.map((v) => round(v / s, 6));
      });
    }
    await writeImageFiles.attention(dir, { imageId, grid: { rows, cols }, tokens, layers: att });
  }
  return { dir, manifest, probes, keyVariance, benchmarks, prefix, underutil };
}

export async function tempRunDir(prefix = 'kvlens-run-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}
