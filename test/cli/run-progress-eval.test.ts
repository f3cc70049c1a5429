// Progress in a log (stderr not a terminal, as under Slurm) for the question-by-question experiments and for
// `kvlens store merge`: lines with count/total, a rate and an ETA (issue 16: they printed a bare count every 50-100
// questions, and merge printed nothing).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { writeLlavaOnevisionCheckpoint } from '../../src/models/synthetic/llava-onevision.js';
import { listIdentity, selectShard } from '../../src/store/selection.js';
import { StoreWriter } from '../../src/store/writer.js';
import { mergeStores } from '../../src/store/merge.js';
import { progressPrinter, withProgress } from '../../src/util/progress.js';
import { identity, imageId, record, tensors } from '../store/synthetic.js';

let root: string;
before(async () => {
  root = mkdtempSync(join(tmpdir(), 'kvlens-progress-eval-'));
  writeLlavaOnevisionCheckpoint(join(root, 'model'));
  await generateSynthetic('pope', join(root, 'data', 'pope'), { seed: 1, n: 3 });
  await generateSynthetic('blink', join(root, 'data', 'blink'), { seed: 1, n: 3 });
  await generateSynthetic('coco', join(root, 'data', 'coco'), { seed: 1, n: 3 });
  const common = { model: 'model', maxNewTokens: 4, pictures: { images: 0, questions: 0 } };
  writeFileSync(join(root, 'blocking.yaml'), stringify({
    experiment: 'blocking', ...common, out: 'runs/blocking', blockLayers: '-2:',
    keys: { images: 'dataset:coco:data/coco', n: 3, resolution: 70, blockLayers: '-2:' },
    benchmarks: [{ name: 'pope', data: 'data/pope', splits: ['random'] }, { name: 'blink', data: 'data/blink' }],
  }));
  writeFileSync(join(root, 'underutil.yaml'), stringify({ experiment: 'underutil', ...common, out: 'runs/underutil', data: 'data/blink' }));
});
after(() => rmSync(root, { recursive: true, force: true }));

function runLogged(args: string[]): Promise<{ code: number | null; text: string }> {
  return new Promise((ok) => {
    const child = spawn(process.execPath, [resolve('bin/kvlens.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    child.stderr.on('data', (d) => { text += String(d); });
    child.on('exit', (code) => ok({ code, text }));
  });
}

const WITH_ETA = String.raw`(\d+)\/(\d+) \(\d+\.\d%\) [\d.]+(\/s|s\/it) ETA \d+[smh]`;

test('kvlens run blocking / underutil in a log: question count/total with rate and ETA per benchmark', { timeout: 600_000 }, async () => {
  const b = await runLogged(['run', join(root, 'blocking.yaml')]);
  assert.equal(b.code, 0, b.text);
  for (const bench of ['pope', 'blink']) {
    const m = new RegExp(`^run: blocking ${bench} \\(questions\\) ${WITH_ETA}`, 'm').exec(b.text);
    assert.ok(m, `blocking ${bench}: no count/total + ETA line in\n${b.text}`);
    assert.ok(Number(m[2]) >= 2, 'the total is the benchmark\'s question count');
    assert.match(b.text, new RegExp(`^run: blocking ${bench} \\(questions\\) ${m[2]}\\/${m[2]} \\(100\\.0%\\) .* done in `, 'm'));
  }
  const u = await runLogged(['run', join(root, 'underutil.yaml')]);
  assert.equal(u.code, 0, u.text);
  // The clock starts when a benchmark starts (a 0/total event), so the first line's rate is the real one, not
  // 1 question / 1 ms = "1000.00/s" (every tiny-model question takes milliseconds of decoding).
  for (const m of `${b.text}\n${u.text}`.matchAll(/^run: (?:blocking|underutil) .*\) ([\d.]+)\/s /gm)) assert.ok(Number(m[1]) < 500, `rate ${m[0]}`);
  assert.match(u.text, new RegExp(`^run: underutil BLINK \\(questions\\) ${WITH_ETA}`, 'm'));
  assert.match(u.text, /^run: underutil BLINK \(questions\) (\d+)\/\1 \(100\.0%\) .* done in /m);
});

test('store merge: KiB copied with count/total, rate and ETA; the CLI prints them in a log', { timeout: 120_000 }, async () => {
  const total = 30;
  const parts = [0, 1, 2].map((i) => join(root, 'merge', `part${i}`));
  parts.forEach((p, i) => {
    const sel = { index: i, count: 3 };
    const w = StoreWriter.open(p, { identity: identity({ dtype: 'float32' }), selection: sel, list: listIdentity(Array.from({ length: total }, (_, k) => imageId(k))), maxShardBytes: 4_000, kvlensVersion: '0.0.0-test' });
    for (const k of selectShard(Array.from({ length: total }, (_, j) => j), sel)) w.add(imageId(k), record(k), tensors(k));
    w.close();
  });
  let out = '';
  const stream = new Writable({ write(c, _e, cb) { out += String(c); cb(); } });
  const printer = progressPrinter({ stream, tty: false, intervalMs: 0, prefix: 'store merge: ' });
  await withProgress(printer.onProgress, async () => mergeStores(join(root, 'merge', 'out'), parts));
  printer.finish();
  assert.match(out, new RegExp(`^store merge: merge \\(KiB\\) ${WITH_ETA}`, 'm'), out);
  assert.match(out, /^store merge: merge \(KiB\) (\d+)\/\1 \(100\.0%\) .* done in /m);
  const cli = await runLogged(['store', 'merge', join(root, 'merge', 'out2'), ...parts]);
  assert.equal(cli.code, 0, cli.text);
  assert.match(cli.text, /^store merge: merge \(KiB\) (\d+)\/\1 \(100\.0%\) .* done in /m);
  const quiet = await runLogged(['store', 'merge', join(root, 'merge', 'out3'), ...parts, '--quiet']);
  assert.equal(quiet.code, 0);
  assert.equal(quiet.text, '');
});
