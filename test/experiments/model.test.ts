// Which grid an experiment reads on each family: 'base' where the token map has it, else the family's one grid.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { modelViews, resolveView } from '../../src/experiments/model.js';
import { TINY_MODELS } from '../../src/models/synthetic/index.js';

const root = mkdtempSync(join(tmpdir(), 'kvlens-views-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('views per family; the default view is base where it exists, else the one native grid; a view the model lacks is named', () => {
  const dirs = Object.fromEntries((['llava_onevision', 'llava_next', 'qwen2_5_vl'] as const).map((f) => [f, TINY_MODELS[f].write(join(root, f))]));
  assert.deepEqual(modelViews(dirs.llava_onevision), ['base', 'highres']);
  assert.deepEqual(modelViews(dirs.llava_next), ['base', 'highres']);
  assert.deepEqual(modelViews(dirs.qwen2_5_vl), ['highres']);
  assert.equal(resolveView(dirs.llava_next, undefined), 'base');
  assert.equal(resolveView(dirs.llava_next, 'highres'), 'highres');
  assert.equal(resolveView(dirs.qwen2_5_vl, undefined), 'highres');
  assert.throws(() => resolveView(dirs.qwen2_5_vl, 'base', 'keys.view'), /field "keys.view" is "base" but the qwen2_5_vl model has the view\(s\) highres/);
});
