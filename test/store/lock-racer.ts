// Child process for the lock race test: for each trial t, waits for <dir>/go-<t>, then tries to take <dir>/lock-<t>
// (a stale lock the parent planted) and prints "<t> won" or "<t> lost: <reason>". Winners keep their locks until the
// parent says <dir>/done, so losers that come late see a live lock.
//
//   node lock-racer.js <dir> <trials>

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { StoreLock } from '../../src/store/lock.js';

const [dir, trialsText] = process.argv.slice(2);
const trials = Number(trialsText);
const held: StoreLock[] = [];
const cell = new Int32Array(new SharedArrayBuffer(4));
const waitFor = (path: string) => {
  while (!existsSync(path)) Atomics.wait(cell, 0, 0, 1);
};

process.stdout.write('ready\n');
for (let t = 0; t < trials; t++) {
  waitFor(join(dir, `go-${t}`));
  try {
    held.push(StoreLock.acquire(join(dir, `lock-${t}`), { staleAfterMs: 60_000, onWarning: () => undefined }));
    process.stdout.write(`${t} won\n`);
  } catch (e) {
    process.stdout.write(`${t} lost: ${(e as Error).message.replace(/\n/g, ' ')}\n`);
  }
}
waitFor(join(dir, 'done'));
for (const l of held) l.release();
