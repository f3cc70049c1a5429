// τ: the valley of a planted bimodal log-variance sample lands between the modes; not bimodal -> Otsu; fixed; degenerate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bimodalValley, chooseThreshold, histogram, logVariance, otsu } from '../../../src/experiments/keys/threshold.js';
import { Rng } from '../../../src/util/random.js';

/** n values log-normal around 10^centre with sd (in decades). */
function logNormal(rng: Rng, n: number, centre: number, sd: number): number[] {
  return Array.from({ length: n }, () => 10 ** (centre + sd * rng.normal()));
}

test('planted bimodal sample: the valley lies between the modes and separates them', () => {
  const rng = new Rng(7);
  // 6% input-agnostic keys around 20, the rest around 3000 (the paper's 7B shape: a small low mode, τ in between)
  const low = logNormal(rng, 120, Math.log10(20), 0.15);
  const high = logNormal(rng, 1880, Math.log10(3000), 0.2);
  const values = rng.shuffle([...low, ...high]);
  const t = chooseThreshold(values, 'auto');
  assert.equal(t.method, 'bimodal-valley');
  assert.ok(t.value > 60 && t.value < 1000, `τ = ${t.value}`);
  const misclassified = low.filter((v) => v >= t.value).length + high.filter((v) => v < t.value).length;
  assert.ok(misclassified <= 2, `${misclassified} misclassified`);
  const modes = bimodalValley(logVariance(values).logs)!.modes;
  assert.ok(Math.abs(modes[0] - Math.log10(20)) < 0.25 && Math.abs(modes[1] - Math.log10(3000)) < 0.25, `modes ${modes}`);
  assert.match(t.note, /between its modes/);
});

test('exact zeros (constant keys) form their own low mode and fall below τ', () => {
  const rng = new Rng(8);
  const values = [...new Array(30).fill(0), ...logNormal(rng, 500, 2.5, 0.2)];
  const t = chooseThreshold(values, 'auto');
  assert.equal(t.method, 'bimodal-valley');
  assert.ok(t.value > 0 && values.filter((v) => v < t.value).length === 30, `τ = ${t.value}`);
  assert.match(t.note, /30 exact zero/);
});

test('a unimodal sample is not bimodal and falls back to Otsu on log-variance', () => {
  const rng = new Rng(9);
  const values = logNormal(rng, 2000, 2, 0.3);
  assert.equal(bimodalValley(logVariance(values).logs), null);
  const t = chooseThreshold(values, 'auto');
  assert.equal(t.method, 'otsu-log');
  assert.ok(t.value > 10 && t.value < 1000);
});

test('Otsu splits two well-separated clusters between them', () => {
  const xs = [...new Array(50).fill(0).map((_, i) => 1 + i * 0.01), ...new Array(80).fill(0).map((_, i) => 5 + i * 0.01)];
  const t = otsu(xs);
  assert.ok(t > 1.5 && t < 5, `otsu ${t}`);
});

test('fixed and degenerate thresholds; histograms are well-formed', () => {
  assert.deepEqual(chooseThreshold([1, 2, 3], 450), { value: 450, method: 'fixed', note: 'given by the user' });
  assert.throws(() => chooseThreshold([1], -1));
  const d = chooseThreshold([5, 5, 5], 'auto');
  assert.equal(d.method, 'degenerate');
  assert.equal([5, 5, 5].filter((v) => v < d.value).length, 0);
  assert.equal(chooseThreshold([0, 0], 'auto').method, 'degenerate');
  const h = histogram([0, 1, 2, 3, 10], 5);
  assert.deepEqual(h.counts, [2, 2, 0, 0, 1]);
  assert.deepEqual(h.edges, [0, 2, 4, 6, 8, 10]);
  const c = histogram([7, 7], 10);
  assert.deepEqual(c.counts, [2]);
  assert.ok(c.edges[0] < 7 && c.edges[1] > 7);
});
