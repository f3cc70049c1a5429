// The layer-wise flow for semseg (ImageNet-S), refseg (RefCOCO) and propagation (DAVIS) on PLANTED stores: layer 2
// encodes the ground truth (and, for the text tasks, the planted text provider returns the matching code there),
// layer 0 is noise. Also the CLI writing CSV + JSON + indexed PNGs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { runProbeFlow } from '../../src/experiments/flow.js';
import { parseWnidNames } from '../../src/experiments/samples-text.js';
import probe from '../../src/cli/commands/probe.js';
import { plantedDavis, plantedImageNetS, plantedRefCoco } from './planted-zero-shot.js';

const value = (rows: { tap: string; metric: string; value: number }[], tap: string, metric: string) => {
  const r = rows.find((x) => x.tap === tap && x.metric === metric);
  assert.ok(r, `no row for ${tap} ${metric}`);
  return r.value;
};

test('parseWnidNames takes the first comma-separated name and names the bad line', () => {
  const m = parseWnidNames('n01440764 tench, Tinca tinca\nn01443537\tgoldfish, Carassius auratus\n\n', 'names.txt');
  assert.deepEqual([...m], [['n01440764', 'tench'], ['n01443537', 'goldfish']]);
  assert.throws(() => parseWnidNames('n01440764 tench\nnot a line', 'names.txt'), /names.txt: line 2/);
});

test('semseg on a planted store: layer 2 (class codes, matching text vectors) segments, noise does not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-flow-zs-'));
  try {
    const { provider, calls } = await plantedImageNetS(join(dir, 'data'), join(dir, 'store'), 8);
    const res = await runProbeFlow({ task: 'semseg', store: join(dir, 'store'), data: join(dir, 'data'), layers: 'all', threads: 2 }, { textQueries: provider });
    assert.equal(res.missing.length, 0);
    assert.deepEqual(res.taps.map((t) => t.layer), [0, 1, 2]);
    // One provider call for all taps, each class's text once: "thing <id>" from the names file's first name.
    assert.equal(calls.length, 1);
    assert.ok(calls[0].every((t) => /^thing \d+$/.test(t)) && new Set(calls[0]).size === calls[0].length);
    const m2 = value(res.rows, 'lm.2.attn.v', 'mIoU.present');
    const m0 = value(res.rows, 'lm.0.attn.v', 'mIoU.present');
    console.log(`planted semseg mIoU.present: layer0 ${m0.toFixed(3)} layer2 ${m2.toFixed(3)}`);
    assert.ok(m2 > 0.8, `layer 2 ${m2}`);
    assert.ok(m0 < 0.45, `layer 0 ${m0}`);
    // mIoU over all 51 classes counts the absent ones as 0, so it is at most (present classes + 1) / 51.
    assert.ok(value(res.rows, 'lm.2.attn.v', 'mIoU') <= (calls[0].length + 1) / 51 + 1e-9);
    assert.equal(res.rows[0].task, 'imagenet-s-semseg');
    const flow = res.protocol.flow as Record<string, unknown>;
    assert.equal(flow.textContext, '');
    assert.match(String(flow.textPlacement), /standalone/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refseg on a planted store: layer 2 finds the referred object, noise does not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-flow-zs-'));
  try {
    const { provider } = await plantedRefCoco(join(dir, 'data'), join(dir, 'store'), 8);
    // All splits of the synthetic set (val alone has few refs).
    const res = await runProbeFlow({ task: 'refseg', store: join(dir, 'store'), data: join(dir, 'data'), layers: '0,2', split: 'train', threads: 2 }, { textQueries: provider });
    const m2 = value(res.rows, 'lm.2.attn.v', 'mIoU');
    const m0 = value(res.rows, 'lm.0.attn.v', 'mIoU');
    console.log(`planted refseg mIoU: layer0 ${m0.toFixed(3)} layer2 ${m2.toFixed(3)} (n ${res.rows[0].n})`);
    assert.ok(res.rows[0].n >= 4);
    assert.ok(m2 > 0.6, `layer 2 ${m2}`);
    assert.ok(m0 < 0.3, `layer 0 ${m0}`);
    assert.ok(value(res.rows, 'lm.2.attn.v', 'oIoU') > 0.6);
    assert.equal(res.rows[0].task, 'refcoco-refseg');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('propagation on a planted store: layer 2 (object codes) propagates the masks, noise does not; the CLI writes CSV, JSON and indexed PNGs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-flow-zs-'));
  try {
    await plantedDavis(join(dir, 'data'), join(dir, 'store'), 2);
    const res = await runProbeFlow({ task: 'propagation', store: join(dir, 'store'), data: join(dir, 'data'), layers: '0,2', threads: 2 });
    const j2 = value(res.rows, 'lm.2.attn.v', 'J&F');
    const j0 = value(res.rows, 'lm.0.attn.v', 'J&F');
    console.log(`planted propagation J&F: layer0 ${j0.toFixed(3)} layer2 ${j2.toFixed(3)}`);
    assert.ok(j2 > 0.7, `layer 2 ${j2}`);
    assert.ok(j0 < 0.45, `layer 0 ${j0}`);
    assert.equal(res.rows.find((r) => r.metric === 'J&F')!.n, 3); // objects: 1 + 2 in the two synthetic videos

    const out = join(dir, 'results');
    assert.equal(await probe(['propagation', '--store', join(dir, 'store'), '--data', join(dir, 'data'), '--layers', '2', '--out', out, '--threads', '1']), 0);
    const csv = readFileSync(join(out, 'propagation.csv'), 'utf8').trim().split('\n');
    assert.equal(csv[0], 'task,model,tap,layer,metric,value,n,seed');
    assert.ok(csv.some((l) => l.startsWith(`davis-propagation,model,lm.2.attn.v,2,J&F,${j2},3,`)));
    const json = JSON.parse(readFileSync(join(out, 'propagation.json'), 'utf8'));
    assert.equal(json.rows.length, csv.length - 1);
    // Frame 0's PNG is the given annotation; later frames are palette PNGs with ids 0..objects.
    const ann = decode(readFileSync(join(dir, 'data', 'Annotations', '480p', 'synth-seq-1', '00000.png')));
    const p0 = decode(readFileSync(join(out, 'propagation', 'lm.2.attn.v', 'synth-seq-1', '00000.png')));
    assert.deepEqual(Array.from(p0.data), Array.from(ann.data));
    const p5 = decode(readFileSync(join(out, 'propagation', 'lm.2.attn.v', 'synth-seq-1', '00005.png')));
    assert.ok(p5.palette && p5.channels === 1 && Math.max(...p5.data) === 2);
    assert.ok(!existsSync(join(out, 'propagation', 'lm.0.attn.v')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('probe --help lists all six tasks', async () => {
  const logs: string[] = [];
  const orig = console.log;
  console.log = (s: string) => logs.push(s);
  try {
    assert.equal(await probe(['--help']), 0);
  } finally {
    console.log = orig;
  }
  for (const t of ['fewshot-seg', 'correspondence', 'coseg', 'semseg', 'refseg', 'propagation']) assert.match(logs.join('\n'), new RegExp(`\\n  ${t} `));
});
