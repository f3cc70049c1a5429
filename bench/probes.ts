// Benchmark: one layer's Pascal-style few-shot linear probe over a 1,000-image synthetic store
// (27x27 = 729 tokens, 512 dims, 384x384 label maps): 1,000 five-shot episodes, one per query image,
// run on worker threads. Target: under a minute on 2 cores.

import { runFewShotProbeParallel } from '../src/probes/fewshot-parallel.js';
import { syntheticSegItems, type SyntheticSegSpec } from '../src/probes/synthetic.js';

export interface ProbeBenchResult {
  readonly seconds: number;
  /** CPU seconds over all threads (less sensitive to other load on the machine than wall time). */
  readonly cpuSeconds: number;
  readonly episodes: number;
  readonly threads: number;
  readonly mIoU: number;
  readonly fbIoU: number;
}

export async function runProbeBench(options: { threads?: number; episodes?: number } = {}): Promise<ProbeBenchResult> {
  const threads = options.threads ?? 2;
  const episodes = options.episodes ?? 1000;
  const spec: SyntheticSegSpec = { images: 1000, rows: 27, cols: 27, dim: 512, height: 384, width: 384, numClasses: 5, signal: 0.15, seed: 7 };
  const loader = { module: new URL('../src/probes/synthetic.js', import.meta.url).href, fn: 'syntheticSegLoader', args: spec };
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const result = await runFewShotProbeParallel(syntheticSegItems(spec), loader, { episodes, shots: 5, seed: 0 }, threads, threads * 8);
  const seconds = (performance.now() - start) / 1000;
  const get = (m: string): number => result.metrics.find((x) => x.metric === m)?.value ?? NaN;
  // Worker CPU time is included in process.cpuUsage (threads share the process).
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const out = { seconds, cpuSeconds, episodes, threads, mIoU: get('mIoU'), fbIoU: get('FB-IoU') };
  console.log(`probes: pascal-style 5-shot linear probe, ${episodes} episodes over 1000 synthetic images (729 tokens x 512 dims), ${threads} threads: ${seconds.toFixed(1)} s (${((seconds * 1000) / episodes).toFixed(1)} ms/episode; CPU ${cpuSeconds.toFixed(1)} s = ${((cpuSeconds * 1000) / episodes).toFixed(1)} ms/episode), mIoU ${out.mIoU.toFixed(3)}, FB-IoU ${out.fbIoU.toFixed(3)}`);
  return out;
}

// Run directly: node dist/bench/probes.js  (or npx tsx bench/probes.ts)
if (import.meta.url === `file://${process.argv[1]}`) {
  const threads = process.argv[2] ? Number(process.argv[2]) : undefined;
  const episodes = process.argv[3] ? Number(process.argv[3]) : undefined;
  await runProbeBench({ threads, episodes });
}
