// SIGTERM (scancel, --time limit, preemption) during `kvlens extract`: the run stops at an image boundary with exit
// 143, drops its open shard, releases the lock; rerun on another host (KVLENS_HOSTNAME) resumes without anything
// deleted by hand, and the store is byte-identical to an uninterrupted run. A SIGKILLed run's lock (no handler ran) is
// taken over by the other host once its heartbeat is stale.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readManifest } from '../../src/store/format.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { storeFiles } from '../store/store-files.js';
import { tinyModel, writeImages } from './helpers.js';

const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');
const script = join(dirname(here), fromSource ? 'cli-child.ts' : 'cli-child.js');
const N = 10;
let model: string;
let images: string;

before(async () => {
  model = tinyModel();
  images = join(mkdtempSync(join(tmpdir(), 'kvlens-sigterm-')), 'images');
  await writeImages(images, N);
});

interface Run { code: number | null; signal: NodeJS.Signals | null; stderr: string }

/** `kvlens extract` in a child; after `after` images, send `sig`. */
function runCli(args: string[], opts: { sig?: NodeJS.Signals; after?: number; env?: Record<string, string> } = {}): Promise<Run> {
  const child = spawn(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), script, 'extract', ...args, '--progress-interval', '0'],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    const done = (stderr.match(/^extract \d+\/\d+/gm) ?? []).length;
    if (opts.sig && !sent && done >= (opts.after ?? 1)) {
      sent = true;
      child.kill(opts.sig);
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

test('SIGTERM mid-extract: exit 143, lock released, open shard dropped; rerun on another host resumes byte-identically', { timeout: 180_000 }, async () => {
  const common = ['--model', model, '--images', images, '--taps', 'values', '--layers', '0,5', '--max-shard-mb', '0.03'];
  const reference = join(mkdtempSync(join(tmpdir(), 'kvlens-sigterm-ref-')), 'store');
  const ref = await runCli([...common, '--out', reference]);
  assert.equal(ref.code, 0, ref.stderr);
  assert.ok(readManifest(reference).shards.length >= 3, 'several shards, so the stop falls inside an open shard');

  const out = join(mkdtempSync(join(tmpdir(), 'kvlens-sigterm-run-')), 'store');
  const stopped = await runCli([...common, '--out', out], { sig: 'SIGTERM', after: 4, env: { KVLENS_HOSTNAME: 'node-a' } });
  assert.equal(stopped.code, 143, stopped.stderr);
  assert.match(stopped.stderr, /SIGTERM received: stopping at the next image boundary/);
  assert.match(stopped.stderr, /stopped at an image boundary \(SIGTERM\); \d+ images are in finalised shards.*\(exit 143\)/);
  assert.equal(existsSync(join(out, '.lock')), false, 'the lock is released');
  assert.deepEqual(readdirSync(join(out, 'shards')).filter((f) => f.endsWith('.tmp')), [], 'the open shard was dropped');
  const kept = readManifest(out).images.length;
  assert.ok(kept > 0 && kept < N, `stored ${kept}`);

  const resumed = await runCli([...common, '--out', out], { env: { KVLENS_HOSTNAME: 'node-b' } });
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`\\(${kept} already stored\\)`));
  assert.deepEqual(storeFiles(out), storeFiles(reference));
});

test('SIGKILL (no handler runs): the other host refuses while the heartbeat is fresh, takes over once stale, result identical', { timeout: 180_000 }, async () => {
  const common = ['--model', model, '--images', images, '--taps', 'values', '--layers', '0', '--max-shard-mb', '0.02', '--limit', '6'];
  const reference = join(mkdtempSync(join(tmpdir(), 'kvlens-sigkill-ref-')), 'store');
  assert.equal((await runCli([...common, '--out', reference])).code, 0);
  const out = join(mkdtempSync(join(tmpdir(), 'kvlens-sigkill-run-')), 'store');
  const killed = await runCli([...common, '--out', out], { sig: 'SIGKILL', after: 3, env: { KVLENS_HOSTNAME: 'node-a' } });
  assert.equal(killed.signal, 'SIGKILL');
  assert.ok(existsSync(join(out, '.lock')));
  const refused = await runCli([...common, '--out', out], { env: { KVLENS_HOSTNAME: 'node-b', KVLENS_LOCK_STALE_S: '60' } });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /locked by a writer on host node-a, pid \d+.*renewed the lock \d+ s ago; it is taken over once not renewed for 60 s/);
  const old = new Date(Date.now() - 120_000); // the node-a writer stopped renewing two minutes ago
  utimesSync(join(out, '.lock'), old, old);
  const resumed = await runCli([...common, '--out', out], { env: { KVLENS_HOSTNAME: 'node-b', KVLENS_LOCK_STALE_S: '60' } });
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /took over a stale lock \(its writer \(host node-a, pid \d+.*has not renewed it for 1[12]\d s/);
  assert.deepEqual(storeFiles(out), storeFiles(reference));
});
