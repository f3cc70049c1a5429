// The paper's numbers beside a run's: each counterpart is read from the run's own files (checked by hand here), the
// provenance is shown, and a run on another model or fewer questions says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { paperComparisons, paperSection, PAPER_NUMBERS } from '../../src/report/paper-reference.js';
import type { RunResults } from '../../src/results/rundir.js';
import type { Manifest, ProbeRow } from '../../src/results/schema.js';

const manifest = (id: string, lmLayers = 28) => ({ models: [{ id, configHash: 'x', lmLayers }], datasets: [{ name: 'blink/Art_Style', hash: 'h', count: 117 }] } as unknown as Manifest);
const row = (task: string, tap: string, layer: number | null, metric: string, value: number): ProbeRow => ({ task, model: 'm', tap, layer, metric, value, n: 1, seed: 0 });
const table = (rr: number, rw: number, wr: number, ww: number) => ({ valueRightMlmRight: rr, valueRightMlmWrong: rw, valueWrongMlmRight: wr, valueWrongMlmWrong: ww });

test('flow: peak layers and encoder wins against the best LM layer', () => {
  const probes = [
    ...[0.2, 0.5, 0.7, 0.6].map((v, l) => row('pascal5i-fewshot', `lm.${l}.attn.v`, l, 'mIoU', v)),
    ...[0.9, 0.1].map((v, l) => row('pascal5i-fewshot', `lm.${l}.attn.k`, l, 'mIoU', v)), // keys never count
    ...[0.3, 0.6, 0.4, 0.2].map((v, l) => row('spair-correspondence', `lm.${l}.attn.v`, l, 'PCK@0.1.point', v)),
    row('pascal5i-fewshot', 'baseline.25.out', null, 'mIoU', 0.75), row('pascal5i-fewshot', 'baseline.post_norm', null, 'mIoU', 0.1),
    row('spair-correspondence', 'baseline.25.out', null, 'PCK@0.1.point', 0.5),
  ];
  const run = { dir: '/r', manifest: manifest('llava-onevision-qwen2-7b-ov-hf'), probes, samples: [], missing: [], notes: [] } as RunResults;
  const c = paperComparisons(run);
  assert.equal(c.find((x) => x.ref.id === 'fig2-seg-peak')!.kvlens, 'layer 2 (mIoU 0.700)');
  assert.equal(c.find((x) => x.ref.id === 'fig2-corr-peak')!.kvlens, 'layer 1 (PCK@0.1.point 0.600)');
  const t1 = c.find((x) => x.ref.id === 'table1-encoder-wins')!;
  assert.equal(t1.kvlens, '1 of 2 (pascal5i-fewshot)', 'the projector-input row (0.75 > 0.70), not post_norm');
  assert.deepEqual(c.find((x) => x.ref.id === 'fig2-seg-peak')!.differs, [], 'the paper model, 28 layers');
  assert.match(t1.differs.join(), /2 with an encoder row \(the paper: 6\)/);
});

test('under-utilisation: the Art Style rate over every question, the split beside it; another model and fewer questions are named', () => {
  const underutil = {
    model: 'tiny', tap: 'lm.{L}.attn.v', rule: 'r; values from each image encoded alone', layerChoice: 'all: best layer over all',
    subtasks: [{ name: 'Art Style', layer: 3, table: table(1, 1, 1, 1) }],
    alternatives: [{ layerChoice: 'split: held out', subtasks: [{ name: 'Art Style', layer: 2, table: table(1, 0, 1, 0) }] }],
  };
  const run = { dir: '/r', manifest: manifest('llava-onevision-tiny', 8), underutil, samples: [], missing: [], notes: [] } as RunResults;
  const [u] = paperComparisons(run);
  assert.equal(u.ref.paper, '33.3% (39 of 117)');
  assert.equal(u.ref.provenance, 'ABS');
  assert.equal(u.kvlens, '25.0% (1 of 4); split: 0.0% (0 of 2)');
  assert.deepEqual(u.differs, ['model: this run used llava-onevision-tiny', 'data: 4 Art Style questions counted (the paper: 117)']);
  const html = paperSection(run)!;
  assert.match(html, /id="paper-comparison"/);
  assert.match(html, /33\.3% \(39 of 117\) <small>\[ABS\]<\/small>/);
});

test('blocking and prefix: before -> after from benchmarks.json and prefix.json; nothing to compare gives no section', () => {
  const pope = (f1: number) => ({ parser: 'p', splits: ['random', 'popular', 'adversarial'].map((split) => ({ split, n: 3000, accuracy: f1, precision: f1, recall: f1, f1, yesRatio: 0.5, unparsedRate: 0 })) });
  const benchmarks = { model: 'm', conditions: [{ name: 'none', pope: pope(0.781) }, { name: 'block-input-agnostic', blockedLayers: [18, 27], pope: pope(0.812) }] };
  const bdd = (v: number[]) => v.map((x, l) => row('bdd10k-linearseg', `lm.${l}.attn.v`, l, 'mIoU', x));
  const prefix = { conditions: [{ name: 'none', prefix: '', rows: bdd([0.5, 0.634]) }, { name: 'correct', prefix: 'a', rows: bdd([0.682, 0.6]) }, { name: 'random', prefix: 'b', rows: bdd([0.6, 0.61]) }] };
  const run = { dir: '/r', manifest: manifest('llava-onevision-qwen2-7b-ov-hf'), benchmarks, prefix, samples: [], missing: [], notes: [] } as unknown as RunResults;
  const c = paperComparisons(run);
  assert.equal(c.find((x) => x.ref.id === 'table3-pope')!.kvlens, 'F1 78.1 -> 81.2; accuracy 78.1 -> 81.2');
  assert.deepEqual(c.find((x) => x.ref.id === 'table3-pope')!.differs, [], 'all 9,000 POPE questions, the paper model');
  assert.equal(c.find((x) => x.ref.id === 'table4-bdd')!.kvlens, '63.4 -> 68.2 (random 61.0)');
  assert.equal(paperSection({ dir: '/r', manifest: manifest('x'), samples: [], missing: [], notes: [] } as RunResults), undefined);
  assert.equal(new Set(PAPER_NUMBERS.map((p) => p.id)).size, PAPER_NUMBERS.length);
});
