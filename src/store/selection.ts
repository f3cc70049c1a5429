// Deterministic subsets of an image list for sharded runs (SLURM job arrays, Kubernetes indexed jobs, or --shard i/n).
// Shard i of n takes the contiguous block [floor(i*N/n), floor((i+1)*N/n)), so merging shards 0..n-1 in order restores
// the input order.

import { createHash } from 'node:crypto';
import { KvlensUsageError } from '../util/errors.js';
import type { ListIdentity, ShardSelection } from './format.js';

export type { ShardSelection } from './format.js';

/** Parse "i/n" (0-based i). */
export function parseShardSpec(spec: string, source = '--shard'): ShardSelection {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  if (!m) throw new KvlensUsageError(`${source}: expected "i/n" (0-based shard i of n) or "auto", got "${spec}"`);
  return checked(Number(m[1]), Number(m[2]), source);
}

function checked(index: number, count: number, source: string): ShardSelection {
  if (!Number.isSafeInteger(count) || count < 1) throw new KvlensUsageError(`${source}: shard count must be >= 1, got ${count}`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) throw new KvlensUsageError(`${source}: shard index ${index} is outside 0..${count - 1}`);
  return { index, count };
}

function intVar(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v.trim())) throw new KvlensUsageError(`environment variable ${name}="${v}" is not a non-negative integer`);
  return Number(v);
}

/**
 * Which shard this process handles. `shard` is "i/n" (0-based), "auto" (read the scheduler's variables, below) or
 * undefined (the whole list: nothing is read from the environment, so a command inside an array job that was not asked
 * to shard never shards silently). "auto": SLURM job arrays (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, offset by
 * SLURM_ARRAY_TASK_MIN and divided by SLURM_ARRAY_TASK_STEP when set, so `--array=1-8` gives shards 0..7); then
 * Kubernetes indexed jobs (JOB_COMPLETION_INDEX with the count from KVLENS_SHARD_COUNT or JOB_COMPLETIONS); with none
 * of them set, the whole list (0/1).
 */
export function resolveShard(opts: { shard?: string }, env: Readonly<Record<string, string | undefined>> = process.env): ShardSelection {
  if (opts.shard === undefined) return { index: 0, count: 1 };
  if (opts.shard.trim() !== 'auto') return parseShardSpec(opts.shard);
  const taskId = intVar(env, 'SLURM_ARRAY_TASK_ID');
  if (taskId !== undefined) {
    const count = intVar(env, 'SLURM_ARRAY_TASK_COUNT');
    if (count === undefined) throw new KvlensUsageError('SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; pass --shard i/n');
    const min = intVar(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    const step = intVar(env, 'SLURM_ARRAY_TASK_STEP') ?? 1;
    if (step < 1 || (taskId - min) % step !== 0) throw new KvlensUsageError(`SLURM array task ${taskId} is not on the grid min ${min} step ${step}`);
    return checked((taskId - min) / step, count, 'SLURM_ARRAY_TASK_ID');
  }
  const jobIndex = intVar(env, 'JOB_COMPLETION_INDEX');
  if (jobIndex !== undefined) {
    const count = intVar(env, 'KVLENS_SHARD_COUNT') ?? intVar(env, 'JOB_COMPLETIONS');
    if (count === undefined) throw new KvlensUsageError('JOB_COMPLETION_INDEX is set but neither KVLENS_SHARD_COUNT nor JOB_COMPLETIONS gives the shard count; pass --shard i/n');
    return checked(jobIndex, count, 'JOB_COMPLETION_INDEX');
  }
  return { index: 0, count: 1 };
}

/** The bounds [begin, end) of shard `sel` of a list of `total` items. */
export function shardRange(total: number, sel: ShardSelection): [number, number] {
  return [Math.floor((sel.index * total) / sel.count), Math.floor(((sel.index + 1) * total) / sel.count)];
}

/** The items shard `sel` handles, in input order. */
export function selectShard<T>(items: readonly T[], sel: ShardSelection): T[] {
  const [b, e] = shardRange(items.length, sel);
  return items.slice(b, e);
}

/**
 * The parts of the run that the selections do not cover. One shard count: the missing "i/n" (more than 8 in a row: "a-b/n"). Mixed counts (stores read
 * together): the uncovered image ranges "images a-b of N" when the list size is known, else one line saying coverage
 * cannot be checked. Empty when complete.
 */
/** Missing shards in one run of consecutive indices listed one by one up to this many; a longer run is "a-b/n". */
const MISSING_LISTED = 8;

export function missingParts(selection: readonly ShardSelection[], list: ListIdentity | null = null): string[] {
  const counts = new Set(selection.map((s) => s.count));
  if (counts.size === 1) {
    // Work and output are bounded by the selections given, never by the count a manifest claims (a count of 16,000,048
    // once made this loop allocate 1.3 GB): walk the gaps between the held indices; a gap longer than a few shards is
    // one entry "a-b/n".
    const n = selection[0].count;
    const have = [...new Set(selection.map((s) => s.index))].filter((i) => i >= 0 && i < n).sort((a, b) => a - b);
    const out: string[] = [];
    const gap = (b: number, e: number): void => { // [b, e)
      if (e - b > MISSING_LISTED) out.push(`${b}-${e - 1}/${n}`);
      else for (let i = b; i < e; i++) out.push(`${i}/${n}`);
    };
    let at = 0;
    for (const i of have) {
      gap(at, i);
      at = i + 1;
    }
    gap(at, n);
    return out;
  }
  if (!list) return [`coverage unknown (shards of counts ${[...counts].join(', ')} and no image list recorded)`];
  const ranges = selection.map((s) => shardRange(list.images, s)).sort((a, b) => a[0] - b[0]);
  const gaps: string[] = [];
  let at = 0;
  for (const [b, e] of ranges) {
    if (b > at) gaps.push(`images ${at}-${b - 1} of ${list.images}`);
    at = Math.max(at, e);
  }
  if (at < list.images) gaps.push(`images ${at}-${list.images - 1} of ${list.images}`);
  return gaps;
}

/** The identity of a run's full image list (before sharding): its length and the sha256 of its ids, one per line. */
export function listIdentity(ids: readonly string[]): ListIdentity {
  const h = createHash('sha256');
  for (const id of ids) h.update(`${id}\n`);
  return { images: ids.length, sha256: h.digest('hex') };
}

/**
 * Images a store's selections should hold but do not (a writer stopped early, or images skipped with --on-error skip):
 * "shards 0/4,1/4 hold 18 of 20 images", or null when complete or when no list is recorded.
 */
export function shortfall(selection: readonly ShardSelection[], list: ListIdentity | null, stored: number): string | null {
  if (!list) return null;
  const expected = selection.reduce((a, s) => {
    const [b, e] = shardRange(list.images, s);
    return a + e - b;
  }, 0);
  if (stored >= expected) return null;
  const parts = selection.map((s) => `${s.index}/${s.count}`).join(',');
  return `shard${selection.length > 1 ? 's' : ''} ${parts} hold${selection.length > 1 ? '' : 's'} ${stored} of ${expected} images ` +
    `(${expected - stored} not extracted: the run stopped early or skipped images; rerun it to finish)`;
}
