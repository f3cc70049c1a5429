import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitLogistic, predictLogistic } from '../../src/linalg/logistic.js';
import { minimizeLbfgs } from '../../src/linalg/lbfgs.js';
import { Rng } from '../../src/util/random.js';

test('L-BFGS finds the minimum of a shifted, badly scaled quadratic', () => {
  // f(x) = sum_i s_i (x_i - c_i)^2, minimum at c.
  const c = [3, -1, 0.5, 10];
  const s = [1, 100, 0.01, 5];
  const r = minimizeLbfgs((x, g) => {
    let f = 0;
    for (let i = 0; i < 4; i++) { f += s[i] * (x[i] - c[i]) ** 2; g[i] = 2 * s[i] * (x[i] - c[i]); }
    return f;
  }, new Float64Array(4), { maxIterations: 500, gradTolerance: 1e-10 });
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(r.x[i] - c[i]) < 1e-4, `x${i}=${r.x[i]} expected ${c[i]}`);
});

test('logistic regression matches the hand-solved optimum of a symmetric two-point problem', () => {
  // Points x=+1 (y=1) and x=-1 (y=0), no standardisation, C=1: by symmetry b=0 and
  // w minimises 0.5 w^2 + 2 log(1 + e^-w), i.e. w = 2 sigmoid(-w). Solve by bisection.
  let lo = 0; let hi = 2;
  for (let i = 0; i < 100; i++) { const m = (lo + hi) / 2; if (m - 2 / (1 + Math.exp(m)) > 0) hi = m; else lo = m; }
  const wStar = (lo + hi) / 2;
  const model = fitLogistic(Float32Array.from([1, -1]), Uint8Array.from([1, 0]), 1, { C: 1, standardize: false, lbfgs: { maxIterations: 200, gradTolerance: 1e-10 } });
  assert.ok(Math.abs(model.weights[0] - wStar) < 1e-5, `w=${model.weights[0]} expected ${wStar}`);
  assert.ok(Math.abs(model.bias) < 1e-5);
  // stronger regularisation (smaller C) shrinks the weight
  const weak = fitLogistic(Float32Array.from([1, -1]), Uint8Array.from([1, 0]), 1, { C: 0.1, standardize: false });
  assert.ok(weak.weights[0] < model.weights[0] / 2);
});

test('standardisation is folded into raw-space weights: predictions equal those on pre-standardised data', () => {
  const rng = new Rng(3);
  const n = 200; const dim = 5;
  const x = new Float32Array(n * dim);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) x[i * dim + j] = rng.normal() * (j + 1) * 10 + j * 50;
    y[i] = x[i * dim] + 0.1 * x[i * dim + 1] > 0 ? 1 : 0;
  }
  const a = fitLogistic(x, y, dim, { standardize: true, lbfgs: { gradTolerance: 1e-9, maxIterations: 500 } });
  // standardise by hand, fit without standardisation, compare probabilities
  const z = new Float32Array(n * dim);
  for (let j = 0; j < dim; j++) {
    let m = 0; let sq = 0;
    for (let i = 0; i < n; i++) { m += x[i * dim + j]; sq += x[i * dim + j] ** 2; }
    m /= n; const sd = Math.sqrt(sq / n - m * m);
    for (let i = 0; i < n; i++) z[i * dim + j] = (x[i * dim + j] - m) / sd;
  }
  const b = fitLogistic(z, y, dim, { standardize: false, lbfgs: { gradTolerance: 1e-9, maxIterations: 500 } });
  const pa = predictLogistic(a, x, dim);
  const pb = predictLogistic(b, z, dim);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(pa[i] - pb[i]) < 1e-3, `row ${i}: ${pa[i]} vs ${pb[i]}`);
  // and it separates the classes
  let correct = 0;
  for (let i = 0; i < n; i++) if ((pa[i] > 0.5 ? 1 : 0) === y[i]) correct++;
  assert.ok(correct / n > 0.95, `train accuracy ${correct / n}`);
});

test('logistic regression is deterministic', () => {
  const rng = new Rng(1);
  const x = new Float32Array(300 * 8).map(() => rng.normal());
  const y = new Uint8Array(300).map((_, i) => (x[i * 8 + 2] > 0 ? 1 : 0));
  const a = fitLogistic(x, y, 8);
  const b = fitLogistic(x, y, 8);
  assert.deepEqual(Array.from(a.weights), Array.from(b.weights));
  assert.equal(a.bias, b.bias);
});
