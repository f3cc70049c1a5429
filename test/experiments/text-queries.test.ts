// Text-query vectors with the generated tiny LLaVA-OneVision, and the three zero-shot probe tasks end to end: synthetic
// datasets -> extractFeatures (dataset: sources) -> runProbeFlow with the model-backed text queries (cached).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { extractFeatures } from '../../src/extract/extract.js';
import { runProbeFlow } from '../../src/experiments/flow.js';
import { modelTextQueries, textQueryContext } from '../../src/experiments/text-queries.js';
import { loadModel } from '../../src/models/index.js';
import { writeLlavaOnevisionCheckpoint } from '../../src/models/synthetic/llava-onevision.js';
import { FeatureStore } from '../../src/store/index.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';

let dir: string;
let model: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kvlens-textq-'));
  model = writeLlavaOnevisionCheckpoint(join(dir, 'model'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('textQueryContext is the prompt before the image placeholder and refuses a template without one', () => {
  assert.equal(textQueryContext('<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<image>\n<|im_end|>'), '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n');
  assert.equal(textQueryContext('a <|vision_start|><|image_pad|><|vision_end|> b'), 'a ');
  assert.throws(() => textQueryContext('no image here'), /no image placeholder/);
});

test('semseg, refseg and propagation run end to end on stores extracted by the tiny model; text vectors are the final token\'s, cached, and refused for another model', { timeout: 120_000 }, async () => {
  const data = { inet: join(dir, 'inet'), ref: join(dir, 'ref'), davis: join(dir, 'davis') };
  await generateSynthetic('imagenet-s', data.inet, { seed: 1, n: 3 });
  await generateSynthetic('refcoco', data.ref, { seed: 2, n: 2 });
  await generateSynthetic('davis', data.davis, { seed: 3, n: 1 });
  const names = readFileSync(join(data.inet, 'ImageNetS50', 'ImageNetS_categories_im50.txt'), 'utf8').split('\n').map((w, i) => `${w} class number ${i + 1}, other`);
  writeFileSync(join(data.inet, 'synset_words.txt'), names.join('\n'));
  const taps = ['lm.{0,7}.attn.v'];
  const stores = { inet: join(dir, 's-inet'), ref: join(dir, 's-ref'), davis: join(dir, 's-davis') };
  for (const [k, name] of [['inet', 'imagenet-s'], ['ref', 'refcoco'], ['davis', 'davis']] as const) {
    await extractFeatures({ model, images: `dataset:${name}:${data[k]}`, out: stores[k], dtype: 'float32', taps, views: ['base'] });
  }

  // ImageNet-S: rows per layer, the cache written next to the results, the text context from the store's prompt.
  const cache = join(dir, 'results', 'text-queries.safetensors');
  const sem = await runProbeFlow({ task: 'semseg', store: stores.inet, data: data.inet, queryCache: cache, threads: 1 });
  assert.deepEqual(sem.taps.map((t) => t.tap), ['lm.0.attn.v', 'lm.7.attn.v']);
  assert.equal(sem.missing.length, 0);
  for (const r of sem.rows) assert.ok(r.value >= 0 && r.value <= 1 && r.n === 3, `${r.metric} ${r.value} ${r.n}`);
  assert.ok(existsSync(cache));
  const store = FeatureStore.open(stores.inet);
  const identity = store.identity;
  store.close();
  const context = textQueryContext(identity.prompt.template);
  assert.equal((sem.protocol.flow as { textContext: string }).textContext, context);
  assert.ok(context.length > 0 && identity.prompt.template.startsWith(context));

  // The cached vectors are reused: nothing is run again; a new text runs once.
  const computed: string[] = [];
  const provider = modelTextQueries(identity, { cachePath: cache, onCompute: (t) => computed.push(t) });
  const again = await provider(['class number 14', 'class number 27'], ['lm.0.attn.v', 'lm.7.attn.v']);
  assert.deepEqual(computed, []);
  const fresh = await provider(['class number 14', 'a text never seen'], ['lm.7.attn.v']);
  assert.deepEqual(computed, ['a text never seen']);
  assert.deepEqual(fresh.get('lm.7.attn.v')!.get('class number 14'), again.get('lm.7.attn.v')!.get('class number 14'));

  // Independently: the value at the text's final token of a longer prompt (causal: later tokens change nothing),
  // heads concatenated. [1, kvHead, pos, dHead]
  const tok = await TextTokenizer.fromPretrained(model);
  const text = 'a text never seen';
  const last = tok.encode(context + text).length - 1;
  const m = await loadModel(model);
  try {
    const res = await m.forward({ inputIds: [tok.encode(context + text + ' and then more')], taps: ['lm.7.attn.v'], logitsAt: 'none' });
    const t = res.taps.get('lm.7.attn.v')!;
    const [, H, S, d] = t.shape;
    const want = new Float32Array(H * d);
    for (let h = 0; h < H; h++) for (let j = 0; j < d; j++) want[h * d + j] = (t.data as Float32Array)[(h * S + last) * d + j];
    const got = fresh.get('lm.7.attn.v')!.get(text)!;
    assert.equal(got.length, H * d);
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `dim ${i}: ${got[i]} vs ${want[i]}`);
    // ... and it differs from the vector of another text (the query depends on the text).
    const other = again.get('lm.7.attn.v')!.get('class number 27')!;
    assert.ok(got.some((v, i) => Math.abs(v - other[i]) > 1e-3));
  } finally {
    await m.dispose();
  }

  // A model directory whose config differs from the store's is refused.
  const changed = join(dir, 'model-changed');
  cpSync(model, changed, { recursive: true });
  writeFileSync(join(changed, 'config.json'), readFileSync(join(model, 'config.json'), 'utf8') + '\n');
  await assert.rejects(runProbeFlow({ task: 'semseg', store: stores.inet, data: data.inet, modelDir: changed, threads: 1 }), /same model/);

  // RefCOCO (every split of the tiny set) and DAVIS on their stores.
  const ref = await runProbeFlow({ task: 'refseg', store: stores.ref, data: data.ref, split: 'train', threads: 1 });
  assert.deepEqual(ref.rows.map((r) => `${r.tap} ${r.metric}`), ['lm.0.attn.v mIoU', 'lm.0.attn.v oIoU', 'lm.7.attn.v mIoU', 'lm.7.attn.v oIoU']);
  for (const r of ref.rows) assert.ok(r.value >= 0 && r.value <= 1 && r.n > 0);
  const pngs = join(dir, 'pngs');
  const dav = await runProbeFlow({ task: 'propagation', store: stores.davis, data: data.davis, layers: '7', predictionsDir: pngs, threads: 1 });
  assert.equal(dav.rows.find((r) => r.metric === 'J&F')!.n, 1);
  assert.equal(readdirSync(join(pngs, 'lm.7.attn.v', 'synth-seq-0')).length, 6);
});
