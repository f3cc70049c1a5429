// Every examples/*.yaml is a valid experiment file (the docs point at them), one per experiment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { EXPERIMENTS, loadExperimentFile } from '../../src/experiments/config.js';
import { TINY_MODELS } from '../../src/models/synthetic/index.js';

test('examples/*.yaml: each validates, and every experiment has one', () => {
  let dir = fileURLToPath(new URL('.', import.meta.url));
  while (!readdirSync(dir).includes('examples')) dir = join(dir, '..'); // src and dist/ sit at different depths
  const files = readdirSync(join(dir, 'examples')).filter((f) => f.endsWith('.yaml'));
  const seen = files.map((f) => loadExperimentFile(join(dir, 'examples', f)).config.experiment).sort();
  assert.deepEqual(seen, [...EXPERIMENTS].sort());
});

// `kvlens run examples/<experiment>.yaml --model <tiny F>` for every family the suite covers: the same files, one
// model override, every experiment writes its results (keys before blocking, which reads the keys run).
for (const family of ['llava_onevision', 'llava_next', 'qwen2_5_vl'] as const) {
  test(`examples/*.yaml run with --model <tiny ${family}>`, { timeout: 300_000 }, async () => {
    let dir = fileURLToPath(new URL('.', import.meta.url));
    while (!readdirSync(dir).includes('examples')) dir = join(dir, '..');
    const root = mkdtempSync(join(tmpdir(), `kvlens-examples-${family}-`));
    try {
      cpSync(join(dir, 'examples'), join(root, 'examples'), { recursive: true, filter: (p) => !p.includes(join('examples', 'tiny')) && !p.includes(join('examples', 'runs')) });
      const data = join(root, 'examples', 'tiny', 'data');
      const sizes = { pascal5i: 8, spair: 3, coco: 4, pope: 1, mme: 1, blink: 2 } as const;
      for (const [name, n] of Object.entries(sizes)) await generateSynthetic(name as keyof typeof sizes, join(data, name), { seed: 0, n });
      const model = TINY_MODELS[family].write(join(root, 'model'));
      for (const e of ['keys', 'blocking', 'flow', 'prefix', 'underutil']) {
        const code = await main(['run', join(root, 'examples', `${e}.yaml`), '--model', model, '--quiet']);
        assert.equal(code, 0, `${e} on ${family}`);
        const manifest = JSON.parse(readFileSync(join(root, 'examples', 'runs', e, 'manifest.json'), 'utf8')) as { models: { id: string }[] };
        assert.equal(manifest.models[0].id, 'model');
      }
      const kv = JSON.parse(readFileSync(join(root, 'examples', 'runs', 'keys', 'results', 'key_variance.json'), 'utf8')) as { view: string; resize: { width: number } };
      assert.equal(kv.view, family === 'qwen2_5_vl' ? 'highres' : 'base');
      assert.equal(kv.resize.width, 70);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}
