// Worker side of parallel.ts: runs the jobs it is sent, one at a time, and posts back results.

import { parentPort } from 'node:worker_threads';
import { runJobInline, type ProbeJob } from './parallel.js';

parentPort?.on('message', async (msg: { id: number; job: ProbeJob }) => {
  try {
    const result = await runJobInline(msg.job);
    parentPort!.postMessage({ id: msg.id, ok: true, result });
  } catch (e) {
    // The error's kind travels with it, so bad input stays a user error (exit 2, no stack) on the main thread.
    const err = e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { name: 'Error', message: String(e) };
    parentPort!.postMessage({ id: msg.id, ok: false, error: err });
  }
});
