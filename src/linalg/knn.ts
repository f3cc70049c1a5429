// Cosine nearest neighbours between rows of two matrices ([n, dim] row-major Float32Array).

/** L2-normalise each row in place (zero rows stay zero). Returns the same array. */
export function normalizeRowsInPlace(x: Float32Array, dim: number): Float32Array {
  const n = x.length / dim;
  for (let i = 0; i < n; i++) {
    const off = i * dim;
    let s = 0;
    for (let j = 0; j < dim; j++) s += x[off + j] * x[off + j];
    if (s === 0) continue;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) x[off + j] *= inv;
  }
  return x;
}

/** A row-normalised copy. */
export function normalizeRows(x: Float32Array, dim: number): Float32Array {
  return normalizeRowsInPlace(Float32Array.from(x), dim);
}

/** Dot product of row a[ai] and row b[bi]. */
export function rowDot(a: Float32Array, ai: number, b: Float32Array, bi: number, dim: number): number {
  let s = 0;
  const ao = ai * dim;
  const bo = bi * dim;
  for (let j = 0; j < dim; j++) s += a[ao + j] * b[bo + j];
  return s;
}

export interface Neighbour {
  readonly index: number;
  readonly similarity: number;
}

/**
 * For each query row, the index of the most cosine-similar reference row (ties: lowest index).
 * queries [q, dim], refs [r, dim]. Both are normalised internally.
 */
export function cosineNearest(queries: Float32Array, refs: Float32Array, dim: number): Neighbour[] {
  const qn = normalizeRows(queries, dim);
  const rn = normalizeRows(refs, dim);
  const q = qn.length / dim;
  const r = rn.length / dim;
  const out: Neighbour[] = [];
  for (let i = 0; i < q; i++) {
    let best = -1;
    let bestS = -Infinity;
    for (let k = 0; k < r; k++) {
      const s = rowDot(qn, i, rn, k, dim);
      if (s > bestS) { bestS = s; best = k; }
    }
    out.push({ index: best, similarity: bestS });
  }
  return out;
}

/** The k largest entries of values (descending, ties by lower index). */
export function topK(values: ArrayLike<number>, k: number): Neighbour[] {
  const picked: Neighbour[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (picked.length < k) {
      picked.push({ index: i, similarity: v });
      picked.sort((a, b) => b.similarity - a.similarity || a.index - b.index);
    } else if (v > picked[k - 1].similarity) {
      picked[k - 1] = { index: i, similarity: v };
      picked.sort((a, b) => b.similarity - a.similarity || a.index - b.index);
    }
  }
  return picked;
}
