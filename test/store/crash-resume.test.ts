// Crash safety: a writer killed with SIGKILL at exact points (self-kill on writer events) and at arbitrary moments
// (killed from here), then rerun with the same command, ends with a store byte-identical to an uninterrupted run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readManifest } from '../../src/store/format.js';
import { imageId } from './synthetic.js';
import { storeFiles } from './store-files.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');
const script = join(dirname(here), fromSource ? 'write-script.ts' : 'write-script.js');
const N = 24;

interface RunResult { code: number | null; signal: NodeJS.Signals | null; events: string[] }

/** Run the writer child; optionally self-kill at an event, or kill it from here after `killAfterAdds` images. */
function runWriter(dir: string, opts: { dieAt?: string; killAfterAdds?: number; delayMs?: number } = {}): Promise<RunResult> {
  const args = [...(fromSource ? ['--import', 'tsx'] : []), script, dir, String(N), String(opts.delayMs ?? 10), 'float16'];
  const env = { ...process.env, KVLENS_TEST_DIE_AT: opts.dieAt ?? '' };
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: string[] = [];
  let stderr = '';
  let adds = 0;
  let buffered = '';
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      events.push(line);
      if (line === 'image-added' && ++adds === opts.killAfterAdds) child.kill('SIGKILL');
    }
  });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0 && signal !== 'SIGKILL') reject(new Error(`writer exited ${code}: ${stderr}`));
      else resolve({ code, signal, events });
    });
  });
}

/** After any kill the store is consistent: a valid manifest listing a prefix of the images, every listed shard present. */
function assertConsistent(dir: string): number {
  const m = readManifest(dir);
  m.images.forEach((img, i) => assert.equal(img.id, imageId(i)));
  for (const s of m.shards) assert.ok(existsSync(join(dir, 'shards', s.file)), s.file);
  return m.images.length;
}

test('SIGKILL at exact points and at arbitrary moments, rerun: byte-identical to an uninterrupted run', { timeout: 120_000 }, async () => {
  const reference = mkdtempSync(join(tmpdir(), 'kvlens-crash-ref-'));
  const ref = await runWriter(reference, { delayMs: 0 });
  assert.equal(ref.code, 0);
  assert.ok(ref.events.filter((e) => e === 'shard-written').length >= 6, 'the reference run should finalise several shards');
  const refFiles = storeFiles(reference);
  assert.deepEqual([...refFiles.keys()].filter((f) => f.includes('.tmp') || f.includes('lock')), []);

  const dir = mkdtempSync(join(tmpdir(), 'kvlens-crash-'));
  const kills: Array<{ dieAt?: string; killAfterAdds?: number }> = [
    { dieAt: 'image-added:2' }, // open shard half full, only the initial manifest on disk
    { dieAt: 'shard-written:1' }, // shard renamed into place, manifest not yet updated
    { dieAt: 'manifest-updated:1' }, // right after a commit
    { killAfterAdds: 3 }, // wherever the child happens to be
    { dieAt: 'shard-written:2' },
    { killAfterAdds: 5 },
  ];
  const progress: number[] = [];
  let sawLeftovers = false;
  for (const k of kills) {
    const r = await runWriter(dir, k);
    assert.equal(r.signal, 'SIGKILL', `expected the run ${JSON.stringify(k)} to be killed (events: ${r.events.join(',')})`);
    progress.push(assertConsistent(dir));
    if (k.dieAt?.startsWith('shard-written')) {
      // Killed between the shard's rename and the manifest update: the file exists but is not listed (redone later).
      const onDisk = readdirSync(join(dir, 'shards')).filter((f) => /^shard-\d+\.safetensors$/.test(f)).length;
      assert.equal(onDisk, readManifest(dir).shards.length + 1);
    }
    sawLeftovers ||= readdirSync(join(dir, 'shards')).some((f) => f.endsWith('.tmp')) || existsSync(join(dir, '.lock'));
  }
  assert.ok(sawLeftovers, 'kills should have left temp files or a stale lock for the rerun to clean');
  assert.ok(progress[progress.length - 1] > 0 && progress[progress.length - 1] < N, `progress ${progress}`);
  const last = await runWriter(dir);
  assert.equal(last.code, 0);
  // The final run only redid what was not finalised.
  assert.equal(last.events.filter((e) => e === 'image-added').length, N - progress[progress.length - 1]);
  const got = storeFiles(dir);
  assert.deepEqual([...got.keys()], [...refFiles.keys()]);
  for (const [name, bytes] of refFiles) assert.ok(bytes.equals(got.get(name)!), `${name} differs from the uninterrupted run`);
});
