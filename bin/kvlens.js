#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/cli by `npm run build`. On Linux it first re-executes itself once with
// glibc malloc tunables that keep large transient buffers in the heap between decoder layers (see
// src/runtime/malloc.ts; opt out with KVLENS_NO_MALLOC_TUNING=1).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { shouldReexecForMalloc, withMallocTunables } from '../dist/src/runtime/malloc.js';

if (shouldReexecForMalloc()) {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit', env: withMallocTunables(),
  });
  // The child gets terminal signals itself (same process group); forwarded ones reach it too. Wait for its end.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { child.kill(sig); });
  child.on('error', (err) => {
    console.error(`kvlens: could not restart node with malloc settings (${err.message}); set KVLENS_NO_MALLOC_TUNING=1 to skip this step`);
    process.exitCode = 1;
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    else process.exitCode = code ?? 1;
  });
} else {
  const { main } = await import('../dist/src/cli/main.js');
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  });
}
