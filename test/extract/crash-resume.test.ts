// `kvlens extract` in a child process killed with SIGKILL after k images (several k, small shards so kills land
// before, between and after shard finalisations), rerun each time with the same command: the final store is
// byte-identical to an uninterrupted run. Also the CLI's exit status and messages for a skipped image.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
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
const N = 16;
let model: string;
let images: string;

before(async () => {
  model = tinyModel();
  images = join(mkdtempSync(join(tmpdir(), 'kvlens-crash-x-')), 'images');
  await writeImages(images, N);
});

interface Run { code: number | null; signal: NodeJS.Signals | null; stderr: string; lines: number }

/** Run `kvlens extract`; with killAfter, SIGKILL it once it reports that many images done in this run. */
function runCli(args: string[], killAfter?: number): Promise<Run> {
  const child = spawn(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), script, 'extract', ...args, '--progress-interval', '0'],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let lines = 0;
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    lines = (stderr.match(/^extract \d+\/\d+/gm) ?? []).length;
    if (killAfter !== undefined && lines >= killAfter && child.exitCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr, lines }));
  });
}

test('SIGKILL during kvlens extract at several points, rerun: byte-identical store', { timeout: 180_000 }, async () => {
  const common = ['--model', model, '--images', images, '--taps', 'values,keys', '--layers', '0,3,7', '--max-shard-mb', '0.06'];
  const reference = join(mkdtempSync(join(tmpdir(), 'kvlens-crash-ref-')), 'store');
  const ref = await runCli([...common, '--out', reference]);
  assert.equal(ref.code, 0, ref.stderr);
  assert.ok(readManifest(reference).shards.length >= 4, 'several shards, so kills fall around finalisations');

  const out = join(mkdtempSync(join(tmpdir(), 'kvlens-crash-run-')), 'store');
  const stored: number[] = [];
  for (const k of [2, 3, 4, 5]) {
    const r = await runCli([...common, '--out', out], k);
    assert.equal(r.signal, 'SIGKILL', `run killed after ${k} images should die by SIGKILL: ${r.stderr}`);
    stored.push(readManifest(out).images.length);
  }
  assert.ok(stored[stored.length - 1] > 0 && stored[stored.length - 1] < N, `progress ${stored}`);
  assert.ok(stored.every((n, i) => i === 0 || n >= stored[i - 1]), `finalised images never go back: ${stored}`);
  const last = await runCli([...common, '--out', out]);
  assert.equal(last.code, 0, last.stderr);
  assert.match(last.stderr, new RegExp(`\\(${stored[stored.length - 1]} already stored\\)`));
  const want = storeFiles(reference);
  const got = storeFiles(out);
  assert.deepEqual([...got.keys()], [...want.keys()]);
  for (const [name, bytes] of want) assert.ok(bytes.equals(got.get(name)!), `${name} differs from the uninterrupted run`);
});

test('CLI: a skipped image gives exit status 1 and is named; with stop, status 2 naming the image', { timeout: 60_000 }, async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'kvlens-cli-bad-')), 'imgs');
  await writeImages(dir, 2);
  writeFileSync(join(dir, 'broken.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]));
  const out = join(dir, '..', 'store');
  const skip = await runCli(['--model', model, '--images', dir, '--out', out, '--taps', 'lm.0.attn.v', '--on-error', 'skip']);
  assert.equal(skip.code, 1, skip.stderr);
  assert.match(skip.stderr, /skipped broken\.jpg/);
  assert.match(skip.stderr, /added 2, already stored 0, skipped 1 of 3/);
  const stop = await runCli(['--model', model, '--images', dir, '--out', join(dir, '..', 'store2'), '--taps', 'lm.0.attn.v']);
  assert.equal(stop.code, 2, stop.stderr);
  assert.match(stop.stderr, /image "broken\.jpg" .*failed/);
});
