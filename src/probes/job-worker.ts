// Worker side of parallel.ts: runs the jobs it is sent, one at a time, and posts back results.

import { parentPort } from 'node:worker_threads';
import { runJobInline, type ProbeJob } from './parallel.js';

parentPort?.on('message', async (msg: { id: number; job: ProbeJob }) => {
  try {
    const result = await runJobInline(msg.job);
    parentPort!.postMessage({ id: msg.id, ok: true, result });
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, ok: false, error: e instanceof Error ? `${e.message}\n${e.stack}` : String(e) });
  }
});
