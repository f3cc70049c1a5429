// A long `kvlens run` in a log (stderr not a terminal, as under Slurm): progress lines with count/total, rate and ETA
// come at least every few seconds through extraction and probing; a resumed run counts the stored images as already
// done instead of printing an absurd rate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { writeLlavaOnevisionCheckpoint } from '../../src/models/synthetic/llava-onevision.js';
import { progressPrinter, reportProgress, withProgress } from '../../src/util/progress.js';

let root: string;
before(async () => {
  root = mkdtempSync(join(tmpdir(), 'kvlens-progress-'));
  writeLlavaOnevisionCheckpoint(join(root, 'model'));
  await generateSynthetic('pascal5i', join(root, 'data', 'pascal5i'), { seed: 5, n: 40 });
  writeFileSync(join(root, 'flow.yaml'), stringify({
    experiment: 'flow', model: 'model', out: 'runs/flow', view: 'base', layers: '*', lmTaps: ['values'], projector: false,
    tasks: [{ task: 'fewshot-seg', data: 'data/pascal5i', fold: 'pooled', shots: 1, episodes: 'per-entry' }],
  }));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Run kvlens with stderr piped (not a TTY); every stderr line with the seconds since start. */
function runLogged(args: string[]): Promise<{ code: number | null; lines: { t: number; text: string }[] }> {
  return new Promise((ok) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [resolve('bin/kvlens.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const lines: { t: number; text: string }[] = [];
    let buf = '';
    child.stderr.on('data', (d) => {
      buf += String(d);
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push({ t: (Date.now() - t0) / 1000, text: buf.slice(0, i) });
        buf = buf.slice(i + 1);
      }
    });
    child.on('exit', (code) => ok({ code, lines }));
  });
}

test('kvlens run in a log: count/total, rate and ETA at least every few seconds; a resumed run has sensible rates', { timeout: 600_000 }, async () => {
  const first = await runLogged(['run', join(root, 'flow.yaml')]);
  assert.equal(first.code, 0, first.lines.map((l) => l.text).join('\n'));
  const progress = first.lines.filter((l) => /^run: (extract|probe) .* \d+\/\d+ \(\d+\.\d%\) /.test(l.text));
  const extract = progress.filter((l) => /^run: extract /.test(l.text));
  const probe = progress.filter((l) => /^run: probe /.test(l.text));
  assert.ok(extract.length >= 2 && probe.length >= 2, first.lines.map((l) => l.text).join('\n'));
  assert.ok(extract.some((l) => /\/\d+ \(\d+\.\d%\) [\d.]+(\/s|s\/it) ETA \d+[smh]/.test(l.text)), 'extraction lines carry a rate and an ETA');
  assert.match(extract[extract.length - 1].text, /\/(\d+) \(100\.0%\) .* done in /);
  // no silence: between the first and the last progress line, no gap longer than the 5 s interval (+ slack)
  const timed = first.lines.filter((l) => l.t >= progress[0].t && l.t <= progress[progress.length - 1].t);
  for (let i = 1; i < timed.length; i++) assert.ok(timed[i].t - timed[i - 1].t < 7, `${timed[i].t - timed[i - 1].t} s of silence before "${timed[i].text}"`);

  // Rerun: every image is already stored; the extraction line says so and shows no rate made of stored images.
  const second = await runLogged(['run', join(root, 'flow.yaml')]);
  assert.equal(second.code, 0);
  const resumed = second.lines.filter((l) => /^run: extract /.test(l.text));
  assert.ok(resumed.length >= 1);
  const last = resumed[resumed.length - 1].text;
  assert.match(last, /(\d+) already done/);
  const rate = /\) ([\d.]+)\/s /.exec(last);
  assert.ok(!rate || Number(rate[1]) < 1000, `no nonsense rate: ${last}`);
});

test('progressPrinter over the channel: one line per step, resumed items excluded from the rate, nothing outside withProgress', async () => {
  let out = '';
  const stream = new Writable({ write(c, _e, cb) { out += String(c); cb(); } });
  const printer = progressPrinter({ stream, tty: false, intervalMs: 0, prefix: 'run: ' });
  reportProgress({ step: 'ignored', done: 1, total: 2 }); // no sink installed: nothing
  await withProgress(printer.onProgress, async () => {
    reportProgress({ step: 'extract s', done: 0, total: 4, unit: 'images' });
    reportProgress({ step: 'extract s', done: 3, total: 4, unit: 'images', cached: 3 });
    printer.say('a message');
    reportProgress({ step: 'extract s', done: 4, total: 4, unit: 'images', cached: 3 });
    reportProgress({ step: 'probe fewShot', done: 1, total: 2, unit: 'taps' });
  });
  printer.finish();
  const lines = out.trim().split('\n');
  assert.ok(!out.includes('ignored'));
  assert.match(lines[0], /^run: extract s \(images\) 3\/4 \(75\.0%\) - ETA \?, 3 already done$/);
  assert.equal(lines[1], 'run: a message');
  assert.match(lines[2], /^run: extract s \(images\) 4\/4 \(100\.0%\) .* done in .*, 3 already done$/);
  assert.match(lines[3], /^run: probe fewShot \(taps\) 1\/2 \(50\.0%\)/);
});

test('kvlens run --on-error: a broken image stops the run naming it (exit 2) or is skipped, listed in the manifest, exit 1', { timeout: 600_000 }, async () => {
  const data = join(root, 'data', 'p5-broken');
  cpSync(join(root, 'data', 'pascal5i'), data, { recursive: true });
  const jpegDir = join(data, 'VOC2012', 'JPEGImages');
  const victim = readdirSync(jpegDir).sort()[0];
  const bytes = readFileSync(join(jpegDir, victim));
  writeFileSync(join(jpegDir, victim), bytes.subarray(0, Math.floor(bytes.length * 0.6))); // headers intact, scan cut short
  writeFileSync(join(root, 'broken.yaml'), stringify({
    experiment: 'flow', model: 'model', out: 'runs/broken', view: 'base', layers: '*', lmTaps: ['values'], projector: false,
    tasks: [{ task: 'fewshot-seg', data: 'data/p5-broken', fold: 'pooled', shots: 1, episodes: 'per-entry' }],
  }));
  const stop = await runLogged(['run', join(root, 'broken.yaml'), '--quiet']);
  assert.equal(stop.code, 2, stop.lines.map((l) => l.text).join('\n'));
  assert.ok(stop.lines.some((l) => l.text.includes(victim) && /--on-error skip/.test(l.text)), stop.lines.map((l) => l.text).join('\n'));
  const skip = await runLogged(['run', join(root, 'broken.yaml'), '--quiet', '--on-error', 'skip']);
  assert.equal(skip.code, 1, skip.lines.map((l) => l.text).join('\n'));
  assert.ok(skip.lines.some((l) => /1 image\(s\) were skipped/.test(l.text)));
  const manifest = JSON.parse(readFileSync(join(root, 'runs', 'broken', 'manifest.json'), 'utf8')) as { notes?: string };
  assert.match(manifest.notes ?? '', new RegExp(`1 image\\(s\\) skipped \\(onError: skip\\): .*${victim.replace('.', '\\.')}`));
});
