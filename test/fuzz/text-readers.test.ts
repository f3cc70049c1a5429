// Seeded fuzz of the text readers: config.json (the family parsers and the model_type dispatch of loadModel /
// loadProcessor), experiment YAML (guarded parse + schema), store manifest (readManifest + opening the store).
import { test, after } from 'node:test';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLlavaOnevisionConfig } from '../../src/models/llava_onevision/config.js';
import { parseLlavaNextConfig } from '../../src/models/llava_next/config.js';
import { parseQwen2VlConfig } from '../../src/models/qwen2_vl/config.js';
import { parseQwen2Config } from '../../src/models/qwen2/config.js';
import { readModelType } from '../../src/models/index.js';
import { loadProcessor } from '../../src/preprocess/load.js';
import { loadExperimentFile } from '../../src/experiments/config.js';
import { readManifest } from '../../src/store/format.js';
import { FeatureStore } from '../../src/store/reader.js';
import { StoreWriter } from '../../src/store/writer.js';
import { listIdentity } from '../../src/store/selection.js';
import { HF_REF, HF_REF_MORE, REPO_ROOT } from '../helpers/fixtures.js';
import { identity, imageId, record, tensors } from '../store/synthetic.js';
import { assertClean, fuzz, jsonText, mutateBytes, mutateJson, mutateJsonText } from './harness.js';

const tmp = mkdtempSync(join(tmpdir(), 'kvlens-fuzz-text-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('fuzz: config.json', async () => {
  const configs = [join(HF_REF, 'models', 'llava_onevision_tiny'), join(HF_REF, 'models', 'qwen2vl_tiny'), join(HF_REF, 'models', 'qwen2_tiny'),
    join(HF_REF_MORE, 'models', 'llava_next_tiny'), join(HF_REF_MORE, 'models', 'qwen2_5_vl_tiny')]
    .map((d) => JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')));
  const dir = join(tmp, 'model');
  cpSync(join(HF_REF, 'models', 'llava_onevision_tiny'), dir, { recursive: true, filter: (s) => !s.endsWith('.safetensors') });
  const parsers = [parseLlavaOnevisionConfig, parseLlavaNextConfig, parseQwen2VlConfig, (raw: unknown, where: string) => parseQwen2Config(raw, { where })];
  assertClean(await fuzz({
    name: 'config-json', defaultCases: 400,
    make: (rng) => mutateJsonText(rng, rng.pick(configs)),
    size: (b) => b.length,
    run: async (b) => {
      writeFileSync(join(dir, 'config.json'), b);
      let raw: unknown;
      try { raw = JSON.parse(Buffer.from(b).toString('utf8')); } catch { raw = undefined; }
      for (const p of parsers) {
        try { p(raw, join(dir, 'config.json')); } catch (e) { if (!(e instanceof Error) || e.name !== 'KvlensInputError') throw e; }
      }
      try { readModelType(dir); } catch (e) { if (!(e instanceof Error) || e.name !== 'KvlensInputError') throw e; }
      await loadProcessor(dir);
    },
  }));
});

test('fuzz: experiment YAML', async () => {
  const examples = readdirSync(join(REPO_ROOT, 'examples')).filter((f) => f.endsWith('.yaml')).map((f) => readFileSync(join(REPO_ROOT, 'examples', f)));
  const path = join(tmp, 'experiment.yaml');
  assertClean(await fuzz({
    name: 'experiment-yaml', defaultCases: 300, // the default 2 s bound: the entries scan keeps every parse short
    make: (rng) => mutateBytes(rng, rng.pick(examples)),
    size: (b) => b.length,
    run: (b) => { writeFileSync(path, b); return loadExperimentFile(path); },
  }));
});

test('fuzz: store manifest', async () => {
  const root = join(tmp, 'store');
  const all = [imageId(0), imageId(1), imageId(2)];
  const w = StoreWriter.open(root, { identity: identity({ dtype: 'float16' }), selection: { index: 0, count: 1 }, list: listIdentity(all), kvlensVersion: '0.0.0-test' });
  for (const [i, id] of all.entries()) w.add(id, record(i), tensors(i));
  w.close();
  const manifestPath = join(root, 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  assertClean(await fuzz({
    name: 'store-manifest', defaultCases: 400,
    make: (rng) => (rng.next() < 0.8 ? new TextEncoder().encode(jsonText(mutateJson(rng, manifest))) : mutateJsonText(rng, manifest)),
    size: (b) => b.length,
    run: (b) => {
      writeFileSync(manifestPath, b);
      readManifest(root);
      const store = FeatureStore.open(root);
      try {
        store.verify();
        for (const id of store.images()) {
          for (const tap of store.taps) {
            for (const view of Object.keys(store.image(id).views)) {
              store.read(id, tap, { view });
              store.read(id, tap, { view, head: 0 });
            }
          }
        }
      } finally {
        store.close();
      }
    },
  }));
});
