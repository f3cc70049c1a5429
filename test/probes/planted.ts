// Shared planted-structure generators for the probe tests (not a test file itself).
import { Rng } from '../../src/util/random.js';
import { randomUnit } from '../../src/probes/synthetic.js';
import type { FeatureGrid } from '../../src/probes/grid.js';

/** A grid whose tokens are unit-variance noise plus amp * direction(token) (direction may be null). */
export function plantedGrid(rows: number, cols: number, dim: number, rng: Rng, amp: number, direction: (r: number, c: number) => Float32Array | null): FeatureGrid {
  const data = new Float32Array(rows * cols * dim);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const d = direction(r, c);
      const off = (r * cols + c) * dim;
      for (let j = 0; j < dim; j++) data[off + j] = rng.normal() + (d ? amp * d[j] : 0);
    }
  }
  return { rows, cols, dim, data };
}

export { randomUnit };
