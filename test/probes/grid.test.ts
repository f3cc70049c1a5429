import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelsAtTokenCentres, tokenCentre, tokenLabelsByArea, tokenOfPoint, upsampleBilinear, upsampleNearest, TOKEN_IGNORE } from '../../src/probes/grid.js';

test('bilinear upsampling matches PyTorch align_corners=False', () => {
  const up = upsampleBilinear({ rows: 2, cols: 2, data: Float32Array.from([0, 1, 2, 3]) }, 4, 4);
  assert.deepEqual(Array.from(up), [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
});

test('nearest upsampling and token-centre sampling', () => {
  assert.deepEqual(Array.from(upsampleNearest([1, 2], 1, 2, 1, 4)), [1, 1, 2, 2]);
  const map = { height: 2, width: 4, data: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]) };
  assert.deepEqual(Array.from(labelsAtTokenCentres(map, 1, 2)), [5, 7]);
});

test('token labels by area fraction, with ignore-dominated tokens', () => {
  // 4x4 pixels, 2x2 tokens. Token (0,0): 3 fg 1 bg -> fg; (0,1): 1 fg 3 bg -> bg;
  // (1,0): 3 ignore -> ignored; (1,1): 2 fg 2 bg -> not > 0.5 -> bg
  const px = [
    1, 1, 1, 0,
    1, 0, 0, 0,
    9, 9, 1, 1,
    9, 0, 0, 0,
  ];
  const lab = tokenLabelsByArea({ height: 4, width: 4, data: Uint8Array.from(px) }, 2, 2, (v) => v === 1, (v) => v === 9);
  assert.deepEqual(Array.from(lab), [1, 0, TOKEN_IGNORE, 0]);
});

test('points map to the token containing them and token centres back to pixels', () => {
  assert.deepEqual(tokenOfPoint(0, 0, 100, 50, 5, 10), { row: 0, col: 0 });
  assert.deepEqual(tokenOfPoint(99.9, 49.9, 100, 50, 5, 10), { row: 4, col: 9 });
  assert.deepEqual(tokenOfPoint(100, 50, 100, 50, 5, 10), { row: 4, col: 9 }); // the far edge clamps
  assert.deepEqual(tokenCentre(4, 9, 100, 50, 5, 10), { x: 95, y: 45 });
});
