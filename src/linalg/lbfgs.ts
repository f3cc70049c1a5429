// Limited-memory BFGS for smooth unconstrained minimisation (used by the logistic-regression probe).
// Deterministic: no randomness, fixed iteration order, Float64 state.

export interface LbfgsOptions {
  /** History pairs kept (m). */
  readonly memory: number;
  readonly maxIterations: number;
  /** Stop when ||grad||_inf <= gradTolerance * max(1, |f|). */
  readonly gradTolerance: number;
  /** Stop when the relative decrease of f over one iteration is below this. */
  readonly relTolerance: number;
}

export const DEFAULT_LBFGS: LbfgsOptions = { memory: 10, maxIterations: 200, gradTolerance: 1e-5, relTolerance: 1e-9 };

/** Writes the gradient at x into grad and returns f(x). */
export type Objective = (x: Float64Array, grad: Float64Array) => number;

export interface LbfgsResult {
  readonly x: Float64Array;
  readonly value: number;
  readonly iterations: number;
  readonly evaluations: number;
  readonly converged: boolean;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Minimise `objective` from `x0` (not modified). Backtracking Armijo line search on the two-loop direction. */
export function minimizeLbfgs(objective: Objective, x0: Float64Array, options: Partial<LbfgsOptions> = {}): LbfgsResult {
  const opt = { ...DEFAULT_LBFGS, ...options };
  const n = x0.length;
  const x = Float64Array.from(x0);
  const g = new Float64Array(n);
  let f = objective(x, g);
  let evaluations = 1;
  const sHist: Float64Array[] = [];
  const yHist: Float64Array[] = [];
  const rhoHist: number[] = [];
  const alpha = new Float64Array(opt.memory);
  const dir = new Float64Array(n);
  const xNew = new Float64Array(n);
  const gNew = new Float64Array(n);
  let iterations = 0;
  let converged = maxAbs(g) <= opt.gradTolerance * Math.max(1, Math.abs(f));
  while (!converged && iterations < opt.maxIterations) {
    // Two-loop recursion: dir = -H g.
    for (let i = 0; i < n; i++) dir[i] = -g[i];
    const k = sHist.length;
    for (let j = k - 1; j >= 0; j--) {
      alpha[j] = rhoHist[j] * dot(sHist[j], dir);
      const y = yHist[j];
      for (let i = 0; i < n; i++) dir[i] -= alpha[j] * y[i];
    }
    if (k > 0) {
      const gamma = dot(sHist[k - 1], yHist[k - 1]) / dot(yHist[k - 1], yHist[k - 1]);
      for (let i = 0; i < n; i++) dir[i] *= gamma;
    } else {
      // First step: scale so that the step has unit length at most, a safe start for unscaled problems.
      const gn = Math.sqrt(dot(g, g));
      if (gn > 1) for (let i = 0; i < n; i++) dir[i] /= gn;
    }
    for (let j = 0; j < k; j++) {
      const beta = rhoHist[j] * dot(yHist[j], dir);
      const s = sHist[j];
      for (let i = 0; i < n; i++) dir[i] += (alpha[j] - beta) * s[i];
    }
    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // Not a descent direction (curvature broke down): restart from steepest descent.
      sHist.length = 0; yHist.length = 0; rhoHist.length = 0;
      for (let i = 0; i < n; i++) dir[i] = -g[i];
      slope = dot(g, dir);
    }
    let step = 1;
    let fNew = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let i = 0; i < n; i++) xNew[i] = x[i] + step * dir[i];
      fNew = objective(xNew, gNew);
      evaluations++;
      if (fNew <= f + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    iterations++;
    if (!(fNew <= f)) break; // line search failed: x is as good as it gets numerically
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) { s[i] = xNew[i] - x[i]; y[i] = gNew[i] - g[i]; }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      if (sHist.length === opt.memory) { sHist.shift(); yHist.shift(); rhoHist.shift(); }
      sHist.push(s); yHist.push(y); rhoHist.push(1 / sy);
    }
    const decrease = f - fNew;
    x.set(xNew); g.set(gNew);
    f = fNew;
    if (maxAbs(g) <= opt.gradTolerance * Math.max(1, Math.abs(f))) converged = true;
    else if (decrease <= opt.relTolerance * Math.max(1, Math.abs(f))) converged = true;
  }
  return { x, value: f, iterations, evaluations, converged };
}
