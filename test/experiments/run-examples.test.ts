// Every examples/*.yaml is a valid experiment file (the docs point at them), one per experiment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXPERIMENTS, loadExperimentFile } from '../../src/experiments/config.js';

test('examples/*.yaml: each validates, and every experiment has one', () => {
  let dir = fileURLToPath(new URL('.', import.meta.url));
  while (!readdirSync(dir).includes('examples')) dir = join(dir, '..'); // src and dist/ sit at different depths
  const files = readdirSync(join(dir, 'examples')).filter((f) => f.endsWith('.yaml'));
  const seen = files.map((f) => loadExperimentFile(join(dir, 'examples', f)).config.experiment).sort();
  assert.deepEqual(seen, [...EXPERIMENTS].sort());
});
