// The glibc malloc tunables the CLI re-executes with, and the span recorder the bench's breakdown reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { MALLOC_TUNABLES, mallocTuned, shouldReexecForMalloc, tunedGlibcTunables, withMallocTunables } from '../../src/runtime/malloc.js';
import { measured, measuredSync, startRecording, sumSpans } from '../../src/runtime/stats.js';

test('tunedGlibcTunables adds the malloc settings and keeps what the user set', () => {
  const t = tunedGlibcTunables(undefined);
  for (const [k, v] of Object.entries(MALLOC_TUNABLES)) assert.ok(t.includes(`${k}=${v}`), t);
  const user = tunedGlibcTunables('glibc.malloc.trim_threshold=1:glibc.cpu.x86_ibt=on');
  assert.ok(user.startsWith('glibc.malloc.trim_threshold=1:glibc.cpu.x86_ibt=on:'), user);
  assert.equal(user.match(/trim_threshold/g)!.length, 1);
  assert.ok(mallocTuned({ GLIBC_TUNABLES: t }));
  assert.ok(!mallocTuned({ GLIBC_TUNABLES: 'glibc.cpu.x86_ibt=on' }));
  assert.ok(mallocTuned(withMallocTunables({ GLIBC_TUNABLES: 'glibc.cpu.x86_ibt=on' })));
});

test('shouldReexecForMalloc: Linux without the tunables, unless opted out', () => {
  assert.equal(shouldReexecForMalloc({}, 'linux'), true);
  assert.equal(shouldReexecForMalloc({ KVLENS_NO_MALLOC_TUNING: '1' }, 'linux'), false);
  assert.equal(shouldReexecForMalloc({ GLIBC_TUNABLES: tunedGlibcTunables('') }, 'linux'), false);
  assert.equal(shouldReexecForMalloc({}, 'darwin'), false);
});

test('the launcher re-executes once with the tunables and passes the exit code through', { skip: process.platform !== 'linux' }, () => {
  const env = { ...process.env };
  delete env.GLIBC_TUNABLES;
  delete env.KVLENS_NO_MALLOC_TUNING;
  const r = spawnSync(process.execPath, ['bin/kvlens.js', 'no-such-command'], { encoding: 'utf8', env });
  assert.equal(r.status, 2, r.stderr);
  const ok = spawnSync(process.execPath, ['bin/kvlens.js', '--help'], { encoding: 'utf8', env });
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(ok.stdout.length > 0);
});

test('spans: recorded only while a recording runs, summed by label', async () => {
  await measured('before', async () => 1);
  const rec = startRecording();
  assert.equal(await measured('a', async () => 7), 7);
  measuredSync('b', () => new Float32Array(1 << 20).fill(1));
  await measured('a', async () => 0);
  const spans = rec.stop();
  await measured('after', async () => 1);
  assert.deepEqual(spans.map((s) => s.label), ['a', 'b', 'a']);
  const sums = sumSpans(spans);
  assert.deepEqual(sums.map((s) => s.label), ['a', 'b']);
  assert.ok(sums.every((s) => s.wallS >= 0 && s.userS >= 0 && s.sysS >= 0 && s.minorFaults >= 0));
});
