// Per-image token computations for the viewer: PCA of a layer's tokens to RGB, and cosine nearest neighbours.
// Tokens are a grid [rows, cols, D] flattened to [N = rows*cols, D].

/** Top-k principal directions of centred X [n, d] by power iteration with deflation, using X^T (X v) (no d x d matrix). */
export function principalComponents(x: Float32Array, n: number, d: number, k: number, iterations = 60): Float64Array[] {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const comps: Float64Array[] = [];
  const xv = new Float64Array(n);
  for (let c = 0; c < k; c++) {
    // Deterministic start (no RNG): a fixed pseudo-random direction, so the same input always gives the same colours.
    let v = new Float64Array(d).map((_, j) => Math.sin(12.9898 * (j + 1) + 78.233 * (c + 1)));
    for (let it = 0; it < iterations; it++) {
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += (x[i * d + j] - mean[j]) * v[j];
        xv[i] = s;
      }
      const w = new Float64Array(d);
      for (let i = 0; i < n; i++) {
        const s = xv[i];
        if (s !== 0) for (let j = 0; j < d; j++) w[j] += (x[i * d + j] - mean[j]) * s;
      }
      for (const p of comps) {
        let dot = 0;
        for (let j = 0; j < d; j++) dot += w[j] * p[j];
        for (let j = 0; j < d; j++) w[j] -= dot * p[j];
      }
      const norm = Math.hypot(...w);
      if (norm === 0) break;
      for (let j = 0; j < d; j++) w[j] /= norm;
      v = w;
    }
    // Sign convention: the largest-magnitude coordinate is positive, so colours do not flip between calls.
    let big = 0;
    for (let j = 1; j < d; j++) if (Math.abs(v[j]) > Math.abs(v[big])) big = j;
    if (v[big] < 0) v = v.map((t) => -t);
    comps.push(v);
  }
  return comps;
}

/** Tokens [n, d] -> RGB bytes [n * 3]: projections on the first 3 principal components, each min-max scaled to 0..255. */
export function pcaRgb(x: Float32Array, n: number, d: number): Uint8Array {
  const k = Math.min(3, d);
  const comps = principalComponents(x, n, d, k);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  const out = new Uint8Array(n * 3).fill(128); // channels without a component (d < 3) stay mid-grey
  for (let c = 0; c < k; c++) {
    const proj = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (x[i * d + j] - mean[j]) * comps[c][j];
      proj[i] = s;
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of proj) {
      lo = Math.min(lo, p);
      hi = Math.max(hi, p);
    }
    for (let i = 0; i < n; i++) out[i * 3 + c] = hi > lo ? Math.round(((proj[i] - lo) / (hi - lo)) * 255) : 128;
  }
  return out;
}

/** Cosine similarity of token `t` of A [nA, d] to every token of B [nB, d]; returns sims [nB] and the argmax. */
export function cosineMatch(a: Float32Array, t: number, b: Float32Array, d: number): { sims: Float32Array; best: number } {
  let qn = 0;
  for (let j = 0; j < d; j++) qn += a[t * d + j] ** 2;
  qn = Math.sqrt(qn) || 1;
  const nB = b.length / d;
  const sims = new Float32Array(nB);
  let best = 0;
  for (let i = 0; i < nB; i++) {
    let dot = 0;
    let bn = 0;
    for (let j = 0; j < d; j++) {
      dot += a[t * d + j] * b[i * d + j];
      bn += b[i * d + j] ** 2;
    }
    sims[i] = dot / (qn * (Math.sqrt(bn) || 1));
    if (sims[i] > sims[best]) best = i;
  }
  return { sims, best };
}

/** A small least-recently-used cache (PCA results per image + tap). */
export class LruCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly capacity: number) {}
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, v: V): void {
    this.map.delete(key);
    this.map.set(key, v);
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as string);
  }
  get size(): number {
    return this.map.size;
  }
}
