// The report groups taps by the taps module's families: encoder-baseline rows with layers are their own curve
// (baseline.{L}.out), never mixed into the LM curves or the best-LM-layer column.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encoderComparison, layerCurves } from '../../src/report/analysis.js';
import type { ProbeRow } from '../../src/results/schema.js';

const row = (tap: string, layer: number | null, value: number, seed = 0): ProbeRow => ({ task: 't', model: 'm', tap, layer, metric: 'mIoU', value, n: 1, seed });

test('baseline.* rows with layers: one baseline.{L}.out curve beside lm.{L}.attn.v; the best LM layer ignores it', () => {
  const rows = [
    row('lm.0.attn.v', 0, 0.2), row('lm.1.attn.v', 1, 0.4), row('lm.1.attn.v', 1, 0.6, 1),
    row('baseline.3.out', 3, 0.9), row('baseline.5.out', 5, 0.7), row('baseline.post_norm', null, 0.8), row('projector.out', null, 0.3),
  ];
  const [g] = layerCurves(rows);
  assert.deepEqual(g.curves.map((c) => [c.tap, c.points.map((p) => [p.layer, p.mean])]), [
    ['lm.{L}.attn.v', [[0, 0.2], [1, 0.5]]],
    ['baseline.{L}.out', [[3, 0.9], [5, 0.7]]],
  ]);
  const [e] = encoderComparison(rows);
  assert.deepEqual(e.bestLm, { tap: 'lm.{L}.attn.v', layer: 1, value: 0.5 });
  assert.deepEqual(e.siglip, { tap: 'baseline.3.out', value: 0.9 }, 'a layer row of the baseline, not its post-norm');
  assert.deepEqual(e.projector, { tap: 'projector.out', value: 0.3 });
  // Older runs: siglip.* rows are the baseline too; post_norm is taken only when nothing else is there.
  const [old] = encoderComparison([row('lm.0.attn.v', 0, 0.2), row('siglip.post_norm', null, 0.8)]);
  assert.deepEqual(old.siglip, { tap: 'siglip.post_norm', value: 0.8 });
});
