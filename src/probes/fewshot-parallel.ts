// Few-shot probe across worker threads: episodes are sampled once (seeded), split into contiguous
// chunks, and each chunk runs in a worker that builds its own sample loader from a loader descriptor
// (a module + factory function, so loaders never have to be cloned across threads). Chunk results are
// integer intersection/union sums, merged in chunk order: identical for any thread count.

import { FewShotAccumulator } from '../metrics/segmentation.js';
import { FewShotConfigSchema, fewShotResult, runEpisodes, sampleEpisodes, type Episode, type FewShotConfig, type FewShotItem, type FewShotSample, type SampleLoader } from './fewshot-seg.js';
import { runJobs, type ProbeJob } from './parallel.js';
import type { ProbeResult } from './results.js';

/** A module exporting `fn(args) => SampleLoader<FewShotSample>` (e.g. a store reader for one tap). */
export interface LoaderDescriptor {
  readonly module: string;
  readonly fn: string;
  readonly args: unknown;
}

export interface FewShotChunkArgs {
  readonly episodes: Episode[];
  readonly config: FewShotConfig;
  readonly loader: LoaderDescriptor;
}

/** Worker job: run one chunk of episodes. */
export async function runFewShotChunk(args: FewShotChunkArgs): Promise<ReturnType<FewShotAccumulator['toJSON']>> {
  const mod = (await import(args.loader.module)) as Record<string, unknown>;
  const factory = mod[args.loader.fn];
  if (typeof factory !== 'function') throw new Error(`loader module ${args.loader.module} has no export ${args.loader.fn}`);
  const load = (await (factory as (a: unknown) => unknown)(args.loader.args)) as SampleLoader<FewShotSample>;
  return (await runEpisodes(args.episodes, load, args.config)).toJSON();
}

export async function runFewShotProbeParallel(items: readonly FewShotItem[], loader: LoaderDescriptor, config: Partial<FewShotConfig> = {}, threads?: number, chunks = 16): Promise<ProbeResult> {
  const cfg = FewShotConfigSchema.parse(config);
  const episodes = sampleEpisodes(items, cfg.episodes, cfg.shots, cfg.seed);
  const size = Math.ceil(episodes.length / Math.max(1, chunks));
  const jobs: ProbeJob[] = [];
  for (let s = 0; s < episodes.length; s += size) {
    jobs.push({ module: import.meta.url, fn: 'runFewShotChunk', args: { episodes: episodes.slice(s, s + size), config: cfg, loader } satisfies FewShotChunkArgs });
  }
  const parts = await runJobs<ReturnType<FewShotAccumulator['toJSON']>>(jobs, threads);
  const acc = new FewShotAccumulator();
  for (const p of parts) acc.merge(FewShotAccumulator.fromJSON(p));
  return fewShotResult(acc, cfg, items.map((it) => it.classId));
}
