// `kvlens extract` in a child process killed with SIGKILL after k images (several k, small shards so kills land
// before, between and after shard finalisations), rerun each time with the same command: the final store is
// byte-identical to an uninterrupted run. Also the CLI's exit status and messages for a skipped image.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readManifest } from '../../src/store/format.js';
import { runExtractCli, tinyModelWithImages } from '../helpers/extract-cli.js';
import { storeFiles } from '../store/store-files.js';
import { writeImages } from './helpers.js';

const N = 16;
let model: string;
let images: string;

before(async () => {
  ({ model, images } = await tinyModelWithImages(N, 'crash-x'));
});

test('SIGKILL during kvlens extract at several points, rerun: byte-identical store', { timeout: 180_000 }, async () => {
  const common = ['--model', model, '--images', images, '--taps', 'values,keys', '--layers', '0,3,7', '--max-shard-mb', '0.06'];
  const reference = join(mkdtempSync(join(tmpdir(), 'kvlens-crash-ref-')), 'store');
  const ref = await runExtractCli([...common, '--out', reference]);
  assert.equal(ref.code, 0, ref.stderr);
  assert.ok(readManifest(reference).shards.length >= 4, 'several shards, so kills fall around finalisations');

  const out = join(mkdtempSync(join(tmpdir(), 'kvlens-crash-run-')), 'store');
  const stored: number[] = [];
  for (const k of [2, 3, 4, 5]) {
    const r = await runExtractCli([...common, '--out', out], { signal: 'SIGKILL', after: k });
    assert.equal(r.signal, 'SIGKILL', `run killed after ${k} images should die by SIGKILL: ${r.stderr}`);
    stored.push(readManifest(out).images.length);
  }
  assert.ok(stored[stored.length - 1] > 0 && stored[stored.length - 1] < N, `progress ${stored}`);
  assert.ok(stored.every((n, i) => i === 0 || n >= stored[i - 1]), `finalised images never go back: ${stored}`);
  const last = await runExtractCli([...common, '--out', out]);
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
  const skip = await runExtractCli(['--model', model, '--images', dir, '--out', out, '--taps', 'lm.0.attn.v', '--on-error', 'skip']);
  assert.equal(skip.code, 1, skip.stderr);
  assert.match(skip.stderr, /skipped broken\.jpg/);
  assert.match(skip.stderr, /added 2, already stored 0, skipped 1 of 3/);
  const stop = await runExtractCli(['--model', model, '--images', dir, '--out', join(dir, '..', 'store2'), '--taps', 'lm.0.attn.v']);
  assert.equal(stop.code, 2, stop.stderr);
  assert.match(stop.stderr, /image "broken\.jpg" .*failed/);
});
