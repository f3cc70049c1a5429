// The writer lock as a lease (issue 13): empty and unreadable locks are stale; a reused PID (restarted container) is
// not the holder; another host's lock is stale once its heartbeat is; a disk-full error leaves no lock; of many
// processes racing for one stale lock exactly one wins; a writer that lost its lock stops before committing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreLock, lockHostname, pidNamespace, processStart } from '../../src/store/lock.js';
import { StoreWriter } from '../../src/store/writer.js';
import { KvlensInputError } from '../../src/util/errors.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { identity, imageId, record, tensors } from './synthetic.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kvlens-lock-'));
const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');

function acquireQuiet(path: string, staleAfterMs = 60_000): { lock: StoreLock; warnings: string[] } {
  const warnings: string[] = [];
  return { lock: StoreLock.acquire(path, { staleAfterMs, onWarning: (m) => warnings.push(m) }), warnings };
}

function holderText(over: Record<string, unknown>): string {
  return `${JSON.stringify({ host: lockHostname(), pid: process.pid, start: processStart(process.pid), pidns: null, since: '2026-01-01T00:00:00.000Z', ...over })}\n`;
}

test('an empty or unreadable lock is stale: taken over with a warning, not read as another host\'s lock', () => {
  const d = tmp();
  for (const content of ['', 'garbage\u0000\u0001', '{"host":']) {
    const path = join(d, '.lock');
    writeFileSync(path, content);
    const { lock, warnings } = acquireQuiet(path);
    assert.match(warnings.join('\n'), /took over a stale lock \(the lock file is (empty|unreadable)\)/);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
    lock.release();
    assert.equal(existsSync(path), false);
  }
});

test('same host: a dead pid, or this pid started at another time (restarted container), is not the holder', async () => {
  const d = tmp();
  const path = join(d, '.lock');
  const ns = pidNamespace();
  // Our own pid but another start time: the lock of an earlier process that had this pid (PID 1 in a restarted pod).
  writeFileSync(path, holderText({ start: `${processStart(process.pid)?.split(':')[0]}:1`, pidns: ns }));
  let r = acquireQuiet(path);
  assert.match(r.warnings.join(), /pid \d+ now belongs to another process/);
  // While we hold it, a second acquire in this process is refused as ours.
  assert.throws(() => StoreLock.acquire(path), /this process already has the store open/);
  r.lock.release();
  // A pid that is no longer running.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  const deadPid = Number(dead.stdout.toString());
  writeFileSync(path, holderText({ pid: deadPid, start: 'x:1', pidns: ns }));
  r = acquireQuiet(path);
  assert.match(r.warnings.join(), new RegExp(`pid ${deadPid}.*no longer running`));
  r.lock.release();
  // A live process on this host holds it: refused, naming it; once it exits, taken over.
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  await new Promise((res) => setTimeout(res, 100));
  writeFileSync(path, holderText({ pid: child.pid, start: processStart(child.pid!), pidns: ns }));
  assert.throws(() => StoreLock.acquire(path), new RegExp(`another kvlens run \\(host ${lockHostname()}, pid ${child.pid}`));
  child.kill('SIGKILL');
  await new Promise((res) => child.on('close', res));
  r = acquireQuiet(path);
  assert.match(r.warnings.join(), /no longer running/);
  r.lock.release();
});

test('another host: refused while its heartbeat is fresh (saying when it goes stale), taken over once stale', () => {
  const d = tmp();
  const path = join(d, '.lock');
  writeFileSync(path, holderText({ host: 'node-17', pid: 4242 }));
  assert.throws(() => StoreLock.acquire(path, { staleAfterMs: 60_000 }), (e: unknown) => e instanceof KvlensInputError &&
    /locked by a writer on host node-17, pid 4242.*renewed the lock \d+ s ago; it is taken over once not renewed for 60 s/.test(e.message));
  const old = new Date(Date.now() - 120_000);
  utimesSync(path, old, old);
  const { lock, warnings } = acquireQuiet(path);
  assert.match(warnings.join(), /host node-17, pid 4242.*has not renewed it for 1[12]\d s \(stale after 60 s\)/);
  // The heartbeat renews the mtime; release removes only our own lock.
  utimesSync(path, old, old);
  lock.heartbeat();
  assert.ok(Date.now() - statSync(path).mtimeMs < 10_000);
  lock.release();
  assert.equal(existsSync(path), false);
});

test('a writer that lost its lock (taken over elsewhere) stops before anything becomes visible', () => {
  const d = tmp();
  const w = StoreWriter.open(d, { identity: identity(), maxImagesPerShard: 2, kvlensVersion: '0.0.0-test' });
  w.add(imageId(0), record(0), tensors(0));
  const manifest = readFileSync(join(d, 'manifest.json'));
  // Another writer (a host that judged us stale) replaced the lock.
  rmSync(join(d, '.lock'));
  writeFileSync(join(d, '.lock'), holderText({ host: 'node-3' }));
  assert.throws(() => { for (let i = 1; i < 6; i++) w.add(imageId(i), record(i), tensors(i)); }, /lost its lock \(the lock file was (replaced|removed)/);
  assert.deepEqual(readFileSync(join(d, 'manifest.json')), manifest);
  assert.deepEqual(readdirSync(join(d, 'shards')), []);
  assert.match(readFileSync(join(d, '.lock'), 'utf8'), /node-3/, 'the other writer\'s lock is left alone');
});

test('disk full while writing the lock leaves no lock (and no temp file); after space is freed the next run proceeds', (t) => {
  const mnt = tmp();
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
  if (mounted.status !== 0) {
    t.skip(`cannot mount a small tmpfs to fill (needs root/CAP_SYS_ADMIN): ${mounted.stderr.toString().trim() || mounted.error?.message}`);
    return;
  }
  try {
    const store = join(mnt, 'store');
    mkdirSync(store);
    // Fill the filesystem.
    const filler = join(mnt, 'filler');
    spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k', 'count=64']);
    assert.throws(() => StoreLock.acquire(join(store, '.lock')), /disk full while writing \(ENOSPC\)/);
    assert.deepEqual(readdirSync(store), []);
    rmSync(filler);
    const { lock, warnings } = acquireQuiet(join(store, '.lock'));
    assert.deepEqual(warnings, []);
    lock.release();
  } finally {
    spawnSync('umount', [mnt]);
  }
});

test('a takeover token is cleared when its holder is gone, never because its holder is slow', { timeout: 60_000 }, async () => {
  const d = tmp();
  const path = join(d, '.lock');
  const token = `${path}.takeover`;
  // A live holder that stalled inside its takeover for an hour (a loaded machine): its token stays, nobody enters.
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    await new Promise((r) => sleeper.once('spawn', r));
    writeFileSync(path, '');
    writeFileSync(token, holderText({ pid: sleeper.pid, start: processStart(sleeper.pid!), pidns: pidNamespace() }));
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(token, old, old);
    const t0 = Date.now();
    assert.throws(() => acquireQuiet(path), /could not take the lock: other processes kept changing it/);
    assert.ok(Date.now() - t0 >= 4_000, 'it waited for the holder');
    assert.ok(existsSync(token), 'the live holder keeps its token');
    assert.equal(readFileSync(path, 'utf8'), '', 'the stale lock was not replaced behind the holder\'s back');
  } finally {
    sleeper.kill();
  }
  // The same token whose holder has exited (fresh mtime): cleared at once, the stale lock taken over.
  writeFileSync(token, holderText({ pid: 2 ** 22 + 7, start: 'x:1', pidns: pidNamespace() }));
  const { lock, warnings } = acquireQuiet(path);
  assert.match(warnings.join('\n'), /took over a stale lock \(the lock file is empty\)/);
  assert.equal(existsSync(token), false);
  lock.release();
  assert.deepEqual(readdirSync(d), []);
});

test('many processes race for one stale lock, many times: exactly one wins each time', { timeout: 120_000 }, async () => {
  const d = tmp();
  const RACERS = 6;
  const TRIALS = 30;
  const script = join(dirname(here), fromSource ? 'lock-racer.ts' : 'lock-racer.js');
  const outputs: string[][] = [];
  const children = Array.from({ length: RACERS }, (_, k) => {
    const c = spawn(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), script, d, String(TRIALS)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    outputs[k] = [];
    let buf = '';
    c.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      outputs[k].push(...lines);
    });
    return c;
  });
  const until = async (f: () => boolean) => { while (!f()) await new Promise((r) => setTimeout(r, 5)); };
  await until(() => outputs.every((o) => o.includes('ready')));
  const kinds = ['empty', 'dead host', 'dead pid'];
  for (let t = 0; t < TRIALS; t++) {
    const lock = join(d, `lock-${t}`);
    const kind = kinds[t % kinds.length];
    if (kind === 'empty') writeFileSync(lock, '');
    else if (kind === 'dead host') {
      writeFileSync(lock, holderText({ host: 'gone-node', pid: 7 }));
      const old = new Date(Date.now() - 3_600_000);
      utimesSync(lock, old, old);
    } else writeFileSync(lock, holderText({ pid: 2 ** 22 + 7, start: 'x:1', pidns: pidNamespace() }));
    writeFileSync(join(d, `go-${t}`), '');
    await until(() => outputs.every((o) => o.some((l) => l.startsWith(`${t} `))));
  }
  writeFileSync(join(d, 'done'), '');
  await Promise.all(children.map((c) => new Promise((r) => c.on('close', r))));
  for (let t = 0; t < TRIALS; t++) {
    const lines = outputs.map((o) => o.find((l) => l.startsWith(`${t} `))!);
    const winners = lines.filter((l) => l === `${t} won`).length;
    assert.equal(winners, 1, `trial ${t} (${kinds[t % kinds.length]}): ${lines.join(' | ')}`);
    for (const l of lines) if (l !== `${t} won`) assert.match(l, /lost: .*(another kvlens run|could not take the lock)/);
  }
  assert.deepEqual(readdirSync(d).filter((f) => f.includes('.tmp') || f.includes('takeover')), []);
});
