// End to end on the generated tiny LLaVA-OneVision checkpoint: loadModel, a real PNG through the kvlens processor,
// one forward with vision + LM taps, a second question on the cached image (== full prefill, no vision re-run),
// greedy generation, and the paper's intervention: text queries blocked from every image key in every layer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadModel } from '../../../src/models/index.js';
import { LlavaOnevision } from '../../../src/models/llava_onevision/model.js';
import { writeLlavaOnevisionCheckpoint } from '../../../src/models/synthetic/llava-onevision.js';
import { argmaxRows, span, type BlockSpec } from '../../../src/models/lm/index.js';
import { LlavaOnevisionProcessor, type Prepared } from '../../../src/preprocess/processor.js';
import { maxAbsDiff, type Tensor } from '../../../src/tensor/tensor.js';
import { HF_REF } from '../../helpers/fixtures.js';

const IMAGE = join(HF_REF, 'inputs/image_a_150x200.png');
let dir: string;
let model: LlavaOnevision;
let proc: LlavaOnevisionProcessor;

before(async () => {
  dir = writeLlavaOnevisionCheckpoint(mkdtempSync(join(tmpdir(), 'kvlens-e2e-')));
  const m = await loadModel(dir, { threads: 1 });
  assert.ok(m instanceof LlavaOnevision);
  model = m;
  proc = await LlavaOnevisionProcessor.fromPretrained(dir);
});
after(async () => {
  await model.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const row = (t: Tensor) => Array.from(t.data as BigInt64Array, Number);
const imageInputs = (p: Prepared) => ({ pixelValues: p.pixelValues!, imageSizes: p.imageSizes! });

test('forward with taps, then a second question on the cached image equals a full prefill of both turns', async () => {
  const first = await proc.prepare({ images: [IMAGE], question: 'What is the object?', systemPrompt: null });
  const ids1 = row(first.inputIds);
  const turn2 = 'A disc.<|im_end|>\n<|im_start|>user\nWhat colour is it?<|im_end|>\n<|im_start|>assistant\n';
  const ids2 = proc.tokenizer.encode(turn2, false);
  const full = await proc.prepare({ images: [IMAGE], text: first.prompt + turn2 });
  assert.deepEqual(row(full.inputIds), [...ids1, ...ids2], 'the concatenated prompt tokenizes as the two parts');

  const runs0 = model.visionRuns;
  const a = await model.forward({ inputIds: [ids1], ...imageInputs(first), taps: ['vision.0.out', 'projector.out', 'image.packed', 'lm.*.attn.k', 'lm.2.resid'] });
  assert.equal(model.visionRuns, runs0 + 1);
  const tiles = first.tilesPerImage[0];
  const nImage = ids1.filter((id) => id === proc.imageTokenId).length;
  const { dModel, kvHeads, headDim, lmLayers } = model.dims;
  assert.deepEqual(a.taps.get('vision.0.out')!.shape, [tiles, 16, 64]);
  assert.deepEqual(a.taps.get('projector.out')!.shape, [tiles, 16, dModel]);
  assert.deepEqual(a.taps.get('image.packed')!.shape, [nImage, dModel]);
  assert.deepEqual(a.imageTokens, [nImage]);
  assert.deepEqual(a.taps.get(`lm.${lmLayers - 1}.attn.k`)!.shape, [1, kvHeads, ids1.length, headDim]);
  assert.equal(a.taps.size, 3 + lmLayers + 1);
  // The image features really are the embeddings at the image positions: lm.embed there == image.packed.
  const emb = (await model.forward({ inputIds: [ids1], ...imageInputs(first), taps: ['lm.embed'], logitsAt: 'none' })).taps.get('lm.embed')!;
  const firstImage = ids1.indexOf(proc.imageTokenId);
  assert.equal(maxAbsDiff(emb.data.subarray(firstImage * dModel, (firstImage + nImage) * dModel) as Float32Array, a.taps.get('image.packed')!.data as Float32Array), 0);

  const runs1 = model.visionRuns;
  const b = await model.continue(a.cache, [ids2], { logitsAt: 'all' });
  assert.equal(model.visionRuns, runs1, 'the continuation does not recompute the image');
  assert.equal(a.cache.length, ids1.length, 'the prefix cache is left as it was');
  const whole = await model.forward({ inputIds: full.inputIds, ...imageInputs(full), logitsAt: span(ids1.length, ids1.length + ids2.length) });
  const dl = maxAbsDiff(b.logits!.data, whole.logits!.data);
  assert.ok(dl <= 1e-5, `continued logits vs full prefill: ${dl}`);
  for (let l = 0; l < lmLayers; l++) {
    const dk = maxAbsDiff(b.cache.keys[l].data, whole.cache.keys[l].data);
    assert.ok(dk <= 1e-5, `layer ${l} cached keys: ${dk}`);
  }
});

test('greedy generate: first token is the prefill argmax, the second the argmax after feeding it on the cache', async () => {
  const p = await proc.prepare({ images: [IMAGE], question: 'Describe it.' });
  const g = await model.generate({ inputIds: p.inputIds, ...imageInputs(p) }, { maxNewTokens: 3, eos: [] });
  assert.equal(g.tokens[0].length, 3);
  assert.equal(g.tokens[0][0], argmaxRows(g.prefill.logits!)[0]);
  const step = await model.continue(g.prefill.cache, [[g.tokens[0][0]]]);
  assert.equal(g.tokens[0][1], argmaxRows(step.logits!)[0]);
  assert.equal(g.cache.length, p.inputIds.shape[1] + 2);
  // Stopping at an eos id: the first generated token as the stop id ends generation after one token.
  const once = await model.generate({ inputIds: p.inputIds, ...imageInputs(p) }, { maxNewTokens: 5, eos: [g.tokens[0][0]] });
  assert.deepEqual(once.tokens, [[g.tokens[0][0]]]);
});

test('blocking nothing equals no blocking exactly; blocking every image key from the text makes text logits image-independent', async () => {
  const question = { question: 'What is the object in the image?', systemPrompt: null } as const;
  const a = await proc.prepare({ images: [IMAGE], ...question });
  // Same size, different content: the image mirrored left-right.
  const mirrored = await sharp(IMAGE).flop().png().toBuffer();
  const b = await proc.prepare({ images: [new Uint8Array(mirrored)], ...question });
  const ids = row(a.inputIds);
  assert.deepEqual(row(b.inputIds), ids);
  const first = ids.indexOf(proc.imageTokenId);
  const last = ids.lastIndexOf(proc.imageTokenId);
  const text = span(last + 1, ids.length);
  const all = span(0, model.dims.lmLayers);

  const plain = await model.forward({ inputIds: [ids], ...imageInputs(a), logitsAt: 'all' });
  for (const block of [[], [{ layers: all, queries: [], keys: [] }], [{ layers: all, queries: text, keys: [] }], [{ layers: all, queries: [], keys: span(first, last + 1) }]]) {
    const r = await model.forward({ inputIds: [ids], ...imageInputs(a), logitsAt: 'all', block });
    assert.equal(maxAbsDiff(r.logits!.data, plain.logits!.data), 0, `empty block ${JSON.stringify(block).slice(0, 60)}`);
  }

  const blockImage = [{ layers: all, queries: text, keys: span(first, last + 1) }];
  const ra = await model.forward({ inputIds: [ids], ...imageInputs(a), logitsAt: text, block: blockImage });
  const rb = await model.forward({ inputIds: [ids], ...imageInputs(b), logitsAt: text, block: blockImage });
  assert.equal(maxAbsDiff(ra.logits!.data, rb.logits!.data), 0, 'text logits after a fully blocked image');
  // Not vacuous: without blocking the two images give different text logits, and blocking changed image A's logits.
  const ua = await model.forward({ inputIds: [ids], ...imageInputs(a), logitsAt: text });
  const ub = await model.forward({ inputIds: [ids], ...imageInputs(b), logitsAt: text });
  assert.ok(maxAbsDiff(ua.logits!.data, ub.logits!.data) > 1e-4);
  assert.ok(maxAbsDiff(ua.logits!.data, ra.logits!.data) > 1e-4);
});

test('open-ended blocking (queriesFrom) keeps continuations and generated tokens blind to the image', async () => {
  const question = { question: 'What is the object in the image?', systemPrompt: null } as const;
  const a = await proc.prepare({ images: [IMAGE], ...question });
  const b = await proc.prepare({ images: [new Uint8Array(await sharp(IMAGE).flop().png().toBuffer())], ...question });
  const ids = row(a.inputIds);
  const first = ids.indexOf(proc.imageTokenId);
  const last = ids.lastIndexOf(proc.imageTokenId);
  const all = span(0, model.dims.lmLayers);
  const keys = span(first, last + 1);
  const open = [{ layers: all, queriesFrom: last + 1, keys }];
  const explicitOnly = [{ layers: all, queries: span(last + 1, ids.length), keys }];
  const step = async (p: Prepared, prefillBlock: readonly BlockSpec[], stepBlock?: readonly BlockSpec[]) => {
    const r = await model.forward({ inputIds: [ids], ...imageInputs(p), block: prefillBlock });
    return model.continue(r.cache, [[7, 8, 9]], { logitsAt: 'all', ...(stepBlock ? { block: stepBlock } : {}) });
  };
  const sa = await step(a, open, open);
  const sb = await step(b, open, open);
  assert.equal(maxAbsDiff(sa.logits!.data, sb.logits!.data), 0, 'continuation after an open-ended block is image-independent');
  // Not vacuous: blocking only the prompt's explicit positions leaves the continuation attending to the image.
  const ea = await step(a, explicitOnly, explicitOnly.map((s) => ({ ...s, queries: [] })));
  const eb = await step(b, explicitOnly, explicitOnly.map((s) => ({ ...s, queries: [] })));
  assert.ok(maxAbsDiff(ea.logits!.data, eb.logits!.data) > 1e-4);
  // generate() carries open-ended specs into every decode step.
  const ga = await model.generate({ inputIds: [ids], ...imageInputs(a), block: open }, { maxNewTokens: 4, eos: [] });
  const gb = await model.generate({ inputIds: [ids], ...imageInputs(b), block: open }, { maxNewTokens: 4, eos: [] });
  assert.deepEqual(ga.tokens, gb.tokens);
  assert.equal(maxAbsDiff(ga.prefill.logits!.data, gb.prefill.logits!.data), 0);
});
