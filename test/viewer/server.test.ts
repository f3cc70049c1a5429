import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startViewer, type RunningViewer } from '../../src/viewer/server.js';
import { FeatureStore } from '../../src/store/index.js';
import { writeSyntheticRun } from '../results/synthetic-run.js';
import { COLS, ROWS, writeFixtureStore } from './store-fixture.js';

let base: string;
let runDir: string;
let viewer: RunningViewer;
let ids: string[];
const SECRET = 'top-secret-outside-the-run';

/** Raw GET so paths reach the server exactly as written (no client-side normalisation of '..'). */
function get(path: string): Promise<{ status: number; body: string }> {
  const u = new URL(viewer.url);
  return new Promise((ok, fail) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'kvlens-view-'));
  runDir = join(base, 'run');
  await writeSyntheticRun(runDir, { layers: 4, gridRows: ROWS, gridCols: COLS, imageIds: ['img/0000.jpg'] });
  // The store lives outside the run and is linked in: the viewer reads it through the store API, not as files.
  ids = writeFixtureStore(join(base, 'store'), 3);
  await symlink(join(base, 'store'), join(runDir, 'store'));
  await writeFile(join(base, 'secret.txt'), SECRET);
  await mkdir(join(runDir, 'samples', 'nested'), { recursive: true });
  await writeFile(join(runDir, 'samples', 'nested', 'ok.txt'), 'inside');
  await symlink(join(base, 'secret.txt'), join(runDir, 'samples', 'link-out.txt'));
  await symlink(join(runDir, 'samples', 'nested', 'ok.txt'), join(runDir, 'samples', 'link-in.txt'));
  viewer = await startViewer(runDir, { port: 0 });
});

after(async () => {
  await viewer.close();
  await rm(base, { recursive: true, force: true });
});

test('binds to 127.0.0.1 by default', () => {
  const addr = viewer.server.address();
  assert.ok(typeof addr === 'object' && addr && addr.address === '127.0.0.1');
});

test('files inside the directory are served', async () => {
  assert.deepEqual(await get('/files/samples/nested/ok.txt'), { status: 200, body: 'inside' });
  assert.equal((await get('/files/samples/link-in.txt')).body, 'inside');
  assert.equal((await get('/files/samples%2Fnested%2Fok.txt')).status, 200, 'single percent-encoding is decoded once');
  const png = await get('/files/samples/pascal5i-mask-0.png');
  assert.equal(png.status, 200);
});

test('path traversal is refused in every spelling', async () => {
  const attempts = [
    '/files/../secret.txt', '/files/../../secret.txt', '/files/samples/../../secret.txt', '/files/%2e%2e/secret.txt',
    '/files/%2E%2E%2Fsecret.txt', '/files/samples%2f..%2f..%2fsecret.txt', '/files/%252e%252e%252fsecret.txt',
    '/files/..%5csecret.txt', '/files/%2fetc%2fpasswd', '/files//etc/passwd', '/files/samples/link-out.txt',
    '/files/%00secret.txt', '/files/%e0%a4%a', `/files/${encodeURIComponent(join(base, 'secret.txt'))}`, '/files/store/manifest.json',
    '/../secret.txt', '/%2e%2e/secret.txt', '/files/',
  ];
  for (const p of attempts) {
    const r = await get(p);
    assert.ok(r.status === 403 || r.status === 404, `${p} -> ${r.status}`);
    assert.ok(!r.body.includes(SECRET), `${p} leaked the file`);
  }
  assert.equal((await get('/files/samples/link-out.txt')).status, 403, 'symlink out is refused by realpath');
  assert.equal((await get('/files/%2e%2e/secret.txt')).status, 403);
});

test('the page and its assets are served; unknown paths are 404', async () => {
  const page = await get('/');
  assert.equal(page.status, 200);
  assert.match(page.body, /<canvas id="viewA"/);
  assert.equal((await get('/app.js')).status, 200);
  assert.equal((await get('/server.ts')).status, 404);
  assert.equal((await get('/public/app.js')).status, 404);
});

test('API: info, paged images, PCA, match, mask, key variance, attention', async () => {
  const info = JSON.parse((await get('/api/info')).body);
  assert.equal(info.mode, 'run');
  assert.equal(info.images, 3);
  assert.deepEqual(info.taps.map((t: { name: string }) => t.name).sort(), ['attn.k', 'attn.v']);
  assert.deepEqual(info.keyVariance.layers, [0, 1, 2, 3]);

  const page = JSON.parse((await get('/api/images?offset=1&limit=1')).body);
  assert.equal(page.total, 3);
  assert.deepEqual(page.items.map((i: { id: string }) => i.id), [ids[1]]);
  assert.deepEqual(page.items[0].grid, { rows: ROWS, cols: COLS });

  const q = (o: Record<string, string | number>) => new URLSearchParams(Object.entries(o).map(([k, v]): [string, string] => [k, String(v)])).toString();
  const pca1 = JSON.parse((await get(`/api/pca?${q({ image: ids[0], tap: 'attn.v', layer: 1 })}`)).body);
  assert.equal(Buffer.from(pca1.rgb, 'base64').length, ROWS * COLS * 3);
  const pca2 = JSON.parse((await get(`/api/pca?${q({ image: ids[0], tap: 'attn.v', layer: 2 })}`)).body);
  assert.notEqual(pca1.rgb, pca2.rgb, 'another layer gives another picture');

  // Image 1 is image 0 shifted one column: token (r, c) of image 1 equals token (r, c+1) of image 0 (up to the tiny offset).
  const token = 2 * COLS + 2;
  const m = JSON.parse((await get(`/api/match?${q({ a: ids[1], b: ids[0], tap: 'attn.v', layer: 1, token })}`)).body);
  assert.equal(m.best, 2 * COLS + 3);
  assert.ok(m.score > 0.99);
  // The server's cosine equals one computed here from the store directly.
  const store = FeatureStore.open(join(base, 'store'));
  const ga = store.read(ids[1], 'lm.1.attn.v');
  const gb = store.read(ids[0], 'lm.1.attn.v');
  let dot = 0, na = 0, nb = 0;
  for (let j = 0; j < ga.dim; j++) {
    const x = ga.data[token * ga.dim + j];
    const y = gb.data[5 * ga.dim + j];
    dot += x * y; na += x * x; nb += y * y;
  }
  store.close();
  assert.ok(Math.abs(m.sims[5] - dot / Math.sqrt(na * nb)) < 1e-4);

  const mask = JSON.parse((await get(`/api/mask?${q({ image: ids[0], layer: 3 })}`)).body);
  assert.equal(mask.pred.length, ROWS * COLS);
  assert.equal((await get(`/api/mask?${q({ image: ids[1], layer: 3 })}`)).status, 404);
  const kv = JSON.parse((await get('/api/keyvar?layer=3')).body);
  assert.equal(kv.variance.length, ROWS * COLS);
  const att = JSON.parse((await get(`/api/attention?${q({ image: ids[0], layer: 2, token: 3 })}`)).body);
  assert.equal(att.tokens[att.token], ' dog');
  assert.equal(att.values.length, ROWS * COLS);

  // Bad parameters are client errors naming the parameter.
  assert.equal((await get(`/api/pca?${q({ image: ids[0], tap: 'attn.v', layer: 9 })}`)).status, 404);
  assert.equal((await get(`/api/pca?${q({ image: 'nope', tap: 'attn.v', layer: 0 })}`)).status, 404);
  const bad = await get(`/api/match?${q({ a: ids[0], b: ids[1], tap: 'attn.v', layer: 0, token: 999 })}`);
  assert.equal(bad.status, 400);
  assert.match(bad.body, /token/);
});

test('a bare store can be viewed; a directory that is neither is refused', async () => {
  const v = await startViewer(join(base, 'store'), { port: 0 });
  try {
    const info = JSON.parse(await (await fetch(`${v.url}api/info`)).text());
    assert.equal(info.mode, 'store');
    assert.equal(info.keyVariance, null);
    assert.equal((await fetch(`${v.url}api/keyvar?layer=0`)).status, 404);
  } finally {
    await v.close();
  }
  await assert.rejects(startViewer(join(runDir, 'samples'), { port: 0 }), /manifest\.json/);
});
