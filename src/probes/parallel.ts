// Run probe jobs in parallel on worker_threads, deterministically: a job is (module URL, exported
// function name, JSON-serialisable args); each job's result depends only on its args, and results come
// back in job order whatever the thread count. threads <= 1 runs every job in this thread through the
// same import path, so the parallel and serial answers are identical.

import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { reportProgress } from '../util/progress.js';

export interface ProbeJob {
  /** Absolute file URL of an ES module (e.g. new URL('./x.js', import.meta.url).href). */
  readonly module: string;
  /** Name of an exported function (args) => result | Promise<result>; result must be structured-cloneable. */
  readonly fn: string;
  readonly args: unknown;
}

export async function runJobInline(job: ProbeJob): Promise<unknown> {
  const mod = (await import(job.module)) as Record<string, unknown>;
  const f = mod[job.fn];
  if (typeof f !== 'function') throw new Error(`probe job: ${job.module} has no exported function ${job.fn}`);
  return await (f as (a: unknown) => unknown)(job.args);
}

/** The worker script next to this file (.ts under tsx, .js when compiled). */
function workerUrl(): URL {
  const self = import.meta.url;
  return new URL(self.endsWith('.ts') ? './job-worker.ts' : './job-worker.js', self);
}

/**
 * Under tsx (sources run as .ts) the TypeScript loader is registered in the main thread only, so a
 * .ts worker is started through a tiny bootstrap that registers tsx's ESM hooks first. Compiled .js
 * workers start directly.
 */
function spawnWorker(): Worker {
  const url = workerUrl();
  if (!url.pathname.endsWith('.ts')) return new Worker(url);
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { eval: true });
}

export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

interface WorkerError { name: string; message: string; stack?: string }

/** A job's error as the main thread's own kind: bad input stays KvlensInputError/KvlensUsageError (exit 2, no stack). */
function workerError(e: WorkerError, where: string): Error {
  if (e.name === 'KvlensInputError') return new KvlensInputError(e.message);
  if (e.name === 'KvlensUsageError') return new KvlensUsageError(e.message);
  const err = new Error(`${where} failed: ${e.message}`);
  if (e.stack) err.stack = `${err.message}\n(worker) ${e.stack}`;
  return err;
}

/** Run jobs on up to `threads` workers; results in job order. Rejects with the first failing job's error. */
export async function runJobs<T = unknown>(jobs: readonly ProbeJob[], threads = defaultThreads()): Promise<T[]> {
  const n = Math.min(threads, jobs.length);
  // Progress on the channel of util/progress: "probe fewShot" 3/34 jobs (one job = one tap, i.e. one layer).
  const step = `probe ${jobs[0]?.fn.replace(/TapJob$|Job$/, '') ?? ''}`.trim();
  let finished = 0;
  const tick = () => reportProgress({ step, done: ++finished, total: jobs.length, unit: 'taps' });
  if (jobs.length) reportProgress({ step, done: 0, total: jobs.length, unit: 'taps' });
  if (n <= 1) {
    const out: T[] = [];
    for (const j of jobs) {
      out.push((await runJobInline(j)) as T);
      tick();
    }
    return out;
  }
  const results = new Array<T>(jobs.length);
  let next = 0;
  const workers: Worker[] = [];
  try {
    await Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve, reject) => {
      const w = spawnWorker();
      workers.push(w);
      const feed = (): void => {
        if (next >= jobs.length) { resolve(); return; }
        const id = next++;
        w.postMessage({ id, job: jobs[id] });
      };
      w.on('message', (msg: { id: number; ok: boolean; result?: T; error?: WorkerError }) => {
        if (!msg.ok) { reject(workerError(msg.error!, `probe job ${msg.id} (${jobs[msg.id].fn})`)); return; }
        results[msg.id] = msg.result as T;
        tick();
        feed();
      });
      w.on('error', reject);
      w.on('exit', (code) => { if (code !== 0) reject(new Error(`probe worker exited with code ${code}`)); });
      feed();
    })));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
