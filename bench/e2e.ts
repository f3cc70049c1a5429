// End-to-end figures instead of extrapolations: the keys experiment and the layer-wise flow extraction + probes,
// run as `kvlens run` runs them (validated experiment configs through runExperimentResults), over N images of
// synthetic COCO / PASCAL-5i data in their real on-disk layouts, on a random-weight LLaVA-OneVision-0.5B-shaped
// checkpoint. For each: wall seconds, images per hour, and the share of time outside model forwards (image decode and
// preprocessing, store writes, probes, report I/O), from the per-session spans of src/runtime/stats.ts. A child
// process (with the CLI's malloc tunables) does the measuring.
//
//   npm run bench -- --only e2e [--images 20] [--model <dir of an existing 0.5B-shaped checkpoint>]

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSynthetic } from '../src/data/synthetic/index.js';
import { parseExperimentConfig } from '../src/experiments/config.js';
import { Timings } from '../src/experiments/manifest.js';
import { runExperimentResults } from '../src/experiments/run.js';
import { LLAVA_ONEVISION_0_5B, writeLlavaOnevisionCheckpoint } from '../src/models/synthetic/llava-onevision.js';
import { mallocTuned } from '../src/runtime/malloc.js';
import { counters, spanBetween, startRecording, type Span } from '../src/runtime/stats.js';
import { peakRssBytes, type BenchRow } from './common.js';
import { childEnv } from './vlm.js';

export interface E2eExperiment {
  readonly experiment: 'keys' | 'flow';
  readonly images: number;
  /** The whole run (load, data, forwards, store, probes, result files). */
  readonly total: Span;
  /** Sum of every ORT session run (vision tower, LM layers, head): the model forwards. */
  readonly forwardS: number;
  /** Step timings the experiment records itself (extract, probes, ...). */
  readonly steps: Record<string, number>;
}

export interface E2eResult {
  readonly experiments: E2eExperiment[];
  readonly peakRssBytes: number;
  readonly mallocTuned: boolean;
}

/** The measuring child: one keys run and one flow run over `n` images each. */
async function child(model: string, root: string, n: number): Promise<E2eResult> {
  const coco = join(root, 'data', 'coco');
  const pascal = join(root, 'data', 'pascal5i');
  await generateSynthetic('coco', coco, { seed: 1, n });
  await generateSynthetic('pascal5i', pascal, { seed: 2, n });
  const common = { model, seed: 0, dtype: 'float16', hashData: 'listing' };
  const configs = {
    // blockLayers only names the layers a later blocking run uses (no cost here); -4: also fits tiny checkpoints.
    keys: { experiment: 'keys', ...common, out: join(root, 'run-keys'), images: `dataset:coco:${coco}`, n, blockLayers: '-4:' },
    flow: {
      experiment: 'flow', ...common, out: join(root, 'run-flow'), stores: join(root, 'stores'),
      // 'pooled': every class's images in one episode pool, so a handful of images suffices.
      tasks: [{ task: 'fewshot-seg', data: pascal, fold: 'pooled', shots: 1, limit: n }],
    },
  } as const;
  const experiments: E2eExperiment[] = [];
  for (const name of ['keys', 'flow'] as const) {
    const cfg = parseExperimentConfig(configs[name], `e2e ${name}`);
    mkdirSync(cfg.out, { recursive: true }); // as runExperiment does before runExperimentResults
    const timings = new Timings();
    const rec = startRecording();
    const a = counters();
    await runExperimentResults(cfg, 'bench-0.5b', timings, (m) => console.error(`  [${name}] ${m}`));
    const total = spanBetween(name, a, counters());
    const forwardS = rec.stop().filter((s) => s.label.startsWith('session:')).reduce((acc, s) => acc + s.wallS, 0);
    experiments.push({ experiment: name, images: n, total, forwardS, steps: timings.steps });
  }
  return { experiments, peakRssBytes: peakRssBytes(), mallocTuned: mallocTuned() };
}

export function e2eRows(r: E2eResult): BenchRow[] {
  const rows: BenchRow[] = [{ metric: 'glibc malloc tunables', value: r.mallocTuned ? 'set' : 'NOT set' }];
  for (const e of r.experiments) {
    const outside = Math.max(0, e.total.wallS - e.forwardS);
    rows.push(
      { metric: `${e.experiment}: ${e.images} images, wall`, value: `${e.total.wallS.toFixed(1)} s  [faults ${e.total.minorFaults.toLocaleString('en-US')}, sys ${e.total.sysS.toFixed(1)} s, cpu ${(e.total.userS + e.total.sysS).toFixed(1)} s]` },
      { metric: `${e.experiment}: images per hour`, value: (3600 * e.images / e.total.wallS).toFixed(0) },
      { metric: `${e.experiment}: time in model forwards / outside`, value: `${e.forwardS.toFixed(1)} s / ${outside.toFixed(1)} s (${((100 * outside) / e.total.wallS).toFixed(1)}% outside)` },
      { metric: `${e.experiment}: steps`, value: Object.entries(e.steps).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ') || '-' },
    );
  }
  rows.push({ metric: 'peak RSS (whole child)', value: `${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB` });
  return rows;
}

/** Write (or reuse) the checkpoint, run the child, return its rows and raw result. */
export async function benchE2e(opts: { images?: number; model?: string; log?: (s: string) => void } = {}): Promise<{ result: E2eResult; rows: BenchRow[] }> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const n = opts.images ?? 20;
  const root = mkdtempSync(join(tmpdir(), 'kvlens-bench-e2e-'));
  try {
    let model = opts.model;
    if (!model || !existsSync(join(model, 'config.json'))) {
      model = join(root, 'model');
      log(`writing the LLaVA-OneVision-0.5B-shaped checkpoint to ${model} ...`);
      writeLlavaOnevisionCheckpoint(model, LLAVA_ONEVISION_0_5B);
    }
    log(`end to end: keys + flow over ${n} images each (child process) ...`);
    const self = fileURLToPath(import.meta.url);
    const args = [...(self.endsWith('.ts') ? ['--import', 'tsx'] : []), self, '--child', model, root, String(n)];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 16 * 2 ** 20, stdio: ['ignore', 'pipe', 'inherit'], env: childEnv() });
    if (r.status !== 0) throw new Error(`the end-to-end bench child failed (status ${r.status}, signal ${r.signal})`);
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as E2eResult;
    return { result, rows: e2eRows(result) };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain && process.argv[2] === '--child') {
  console.log(JSON.stringify(await child(process.argv[3], process.argv[4], Number(process.argv[5]))));
}
