// Viewer hardening (issue 14): /files/ is streamed (with byte ranges), the Host header must name the viewer's address
// (DNS rebinding), heavy requests are bounded, and API names never reach Object.prototype.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeavyGate, hostAllowed, startViewer, type RunningViewer } from '../../src/viewer/server.js';
import { writeSyntheticRun } from '../results/synthetic-run.js';
import { COLS, ROWS } from './store-fixture.js';

let base: string;
let viewer: RunningViewer;
const BIG = Buffer.alloc(3 * 1024 * 1024 + 17, 0);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 31) & 0xff;

function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  const u = new URL(viewer.url);
  return new Promise((ok, fail) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(parts), headers: res.headers }));
    });
    req.on('error', fail);
    req.end();
  });
}

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'kvlens-view-hard-'));
  await writeSyntheticRun(join(base, 'run'), { layers: 2, gridRows: ROWS, gridCols: COLS, imageIds: ['img/0000.jpg'] });
  await writeFile(join(base, 'run', 'big.bin'), BIG);
  viewer = await startViewer(join(base, 'run'), { maxHeavy: 2 });
});
after(async () => {
  await viewer.close();
  await rm(base, { recursive: true, force: true });
});

test('a DNS-rebinding Host is refused (421); the bound address, localhost and IP literals pass', async () => {
  assert.equal((await get('/files/big.bin', { host: 'evil.example:80' })).status, 421);
  assert.equal((await get('/api/info', { host: 'attacker.test' })).status, 421);
  const port = new URL(viewer.url).port;
  assert.equal((await get('/api/info', { host: `127.0.0.1:${port}` })).status, 200);
  assert.equal((await get('/api/info', { host: `localhost:${port}` })).status, 200);
  assert.ok(hostAllowed('[::1]:8080', '127.0.0.1'));
  assert.ok(hostAllowed('myhost:1', 'myhost'));
  assert.ok(!hostAllowed(undefined, '127.0.0.1'));
  assert.ok(!hostAllowed('127.0.0.1.evil.example', '127.0.0.1'));
});

test('/files/ streams whole files and byte ranges with the right headers', async () => {
  const whole = await get('/files/big.bin');
  assert.equal(whole.status, 200);
  assert.equal(whole.headers['content-length'], String(BIG.length));
  assert.ok(whole.body.equals(BIG));
  const part = await get('/files/big.bin', { range: 'bytes=1000-1999' });
  assert.equal(part.status, 206);
  assert.equal(part.headers['content-range'], `bytes 1000-1999/${BIG.length}`);
  assert.ok(part.body.equals(BIG.subarray(1000, 2000)));
  const tail = await get('/files/big.bin', { range: 'bytes=-10' });
  assert.ok(tail.body.equals(BIG.subarray(BIG.length - 10)));
  assert.equal((await get('/files/big.bin', { range: `bytes=${BIG.length}-` })).status, 416);
});

test('8 concurrent 3 MiB file requests all complete through a gate of 2; a 9th waiter beyond the queue is refused', async () => {
  const results = await Promise.all(Array.from({ length: 8 }, () => get('/files/big.bin')));
  for (const r of results) assert.ok(r.status === 200 && r.body.length === BIG.length);
  const gate = new HeavyGate(2);
  const held = [await gate.enter(), await gate.enter()];
  const waiting = Array.from({ length: 8 }, () => gate.enter());
  await assert.rejects(gate.enter(), /busy/); // the 9th waiter is refused (503)
  held.forEach((r) => r());
  const released = await Promise.all(waiting.slice(0, 2));
  released.forEach((r) => r());
});

test('API paths named like Object.prototype members are 404', async () => {
  for (const p of ['/constructor', '/__proto__', '/hasOwnProperty', '/toString']) assert.equal((await get(p)).status, 404, p);
});
