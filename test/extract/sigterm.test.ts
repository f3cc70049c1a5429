// SIGTERM (scancel, --time limit, preemption) during `kvlens extract`: the run stops at an image boundary with exit
// 143, drops its open shard, releases the lock; rerun on another host (KVLENS_HOSTNAME) resumes without anything
// deleted by hand, and the store is byte-identical to an uninterrupted run. A SIGKILLed run's lock (no handler ran) is
// taken over by the other host once its heartbeat is stale.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readManifest } from '../../src/store/format.js';
import { runExtractCli, tinyModelWithImages } from '../helpers/extract-cli.js';
import { storeFiles } from '../store/store-files.js';

const N = 10;
let model: string;
let images: string;

before(async () => {
  ({ model, images } = await tinyModelWithImages(N, 'sigterm'));
});

test('SIGTERM mid-extract: exit 143, lock released, open shard dropped; rerun on another host resumes byte-identically', { timeout: 180_000 }, async () => {
  const common = ['--model', model, '--images', images, '--taps', 'values', '--layers', '0,5', '--max-shard-mb', '0.03'];
  const reference = join(mkdtempSync(join(tmpdir(), 'kvlens-sigterm-ref-')), 'store');
  const ref = await runExtractCli([...common, '--out', reference]);
  assert.equal(ref.code, 0, ref.stderr);
  assert.ok(readManifest(reference).shards.length >= 3, 'several shards, so the stop falls inside an open shard');

  const out = join(mkdtempSync(join(tmpdir(), 'kvlens-sigterm-run-')), 'store');
  const stopped = await runExtractCli([...common, '--out', out], { signal: 'SIGTERM', after: 4, env: { KVLENS_HOSTNAME: 'node-a' } });
  assert.equal(stopped.code, 143, stopped.stderr);
  assert.match(stopped.stderr, /SIGTERM received: stopping at the next image boundary/);
  assert.match(stopped.stderr, /stopped at an image boundary \(SIGTERM\); \d+ images are in finalised shards.*\(exit 143\)/);
  assert.equal(existsSync(join(out, '.lock')), false, 'the lock is released');
  assert.deepEqual(readdirSync(join(out, 'shards')).filter((f) => f.endsWith('.tmp')), [], 'the open shard was dropped');
  const kept = readManifest(out).images.length;
  assert.ok(kept > 0 && kept < N, `stored ${kept}`);

  const resumed = await runExtractCli([...common, '--out', out], { env: { KVLENS_HOSTNAME: 'node-b' } });
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`\\(${kept} already stored\\)`));
  assert.deepEqual(storeFiles(out), storeFiles(reference));
});

test('SIGKILL (no handler runs): the other host refuses while the heartbeat is fresh, takes over once stale, result identical', { timeout: 180_000 }, async () => {
  const common = ['--model', model, '--images', images, '--taps', 'values', '--layers', '0', '--max-shard-mb', '0.02', '--limit', '6'];
  const reference = join(mkdtempSync(join(tmpdir(), 'kvlens-sigkill-ref-')), 'store');
  assert.equal((await runExtractCli([...common, '--out', reference])).code, 0);
  const out = join(mkdtempSync(join(tmpdir(), 'kvlens-sigkill-run-')), 'store');
  const killed = await runExtractCli([...common, '--out', out], { signal: 'SIGKILL', after: 3, env: { KVLENS_HOSTNAME: 'node-a' } });
  assert.equal(killed.signal, 'SIGKILL');
  assert.ok(existsSync(join(out, '.lock')));
  const refused = await runExtractCli([...common, '--out', out], { env: { KVLENS_HOSTNAME: 'node-b', KVLENS_LOCK_STALE_S: '60' } });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /locked by a writer on host node-a, pid \d+.*renewed the lock \d+ s ago; it is taken over once not renewed for 60 s/);
  const old = new Date(Date.now() - 120_000); // the node-a writer stopped renewing two minutes ago
  utimesSync(join(out, '.lock'), old, old);
  const resumed = await runExtractCli([...common, '--out', out], { env: { KVLENS_HOSTNAME: 'node-b', KVLENS_LOCK_STALE_S: '60' } });
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /took over a stale lock \(its writer \(host node-a, pid \d+.*has not renewed it for 1[12]\d s/);
  assert.deepEqual(storeFiles(out), storeFiles(reference));
});
