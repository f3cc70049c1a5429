// The one BlockSpec builder: per-layer key sets group by equal sets, empty ones vanish, each call gets its own queries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockSpecsFor, keyBlocksByLayer } from '../../src/eval/blocks.js';

test('layers with the same key set share one block; keys sorted and deduplicated; empty sets give none', () => {
  const blocks = keyBlocksByLayer([
    { layer: 5, keys: [9, 3, 3] }, { layer: 2, keys: [] }, { layer: 6, keys: [3, 9] }, { layer: 7, keys: [4] },
  ]);
  assert.deepEqual(blocks, [{ layers: [5, 6], keys: [3, 9] }, { layers: [7], keys: [4] }]);
});

test('a call\'s specs carry its queries; no queries or an empty block give no spec', () => {
  const blocks = [{ layers: [1, 2], keys: [4, 5] }, { layers: [], keys: [1] }, { layers: [3], keys: [] }];
  assert.deepEqual(blockSpecsFor(blocks, [10, 11]), [{ layers: [1, 2], queries: [10, 11], keys: [4, 5] }]);
  assert.deepEqual(blockSpecsFor(blocks, []), []);
});
