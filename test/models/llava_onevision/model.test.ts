import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { readAllTensors } from '../../../src/tensor/safetensors.js';
import { f32, maxAbsDiff, toF32, type Tensor } from '../../../src/tensor/tensor.js';
import { LlavaOnevision } from '../../../src/models/llava_onevision/model.js';
import { KvlensInputError } from '../../../src/util/errors.js';
import { HF_REF } from '../../helpers/fixtures.js';

const ids = (t: Tensor) => [Array.from(t.data as BigInt64Array, Number)];
const close = (got: Tensor, ref: Tensor, what: string) => {
  assert.deepEqual([...got.shape], [...ref.shape], `${what} shape`);
  const d = maxAbsDiff(toF32(got), toF32(ref));
  assert.ok(d < 1e-4, `${what}: max abs diff ${d}`);
};

test('LLaVA-OneVision image path and embeddings match transformers (llava_single, llava_multi)', async () => {
  const model = await LlavaOnevision.load(join(HF_REF, 'models/llava_onevision_tiny'));
  try {
    assert.deepEqual(model.dims, { lmLayers: 4, visionLayers: 2, kvHeads: 2, headDim: 16, dModel: 64 });
    const single = readAllTensors(join(HF_REF, 'runs/llava_single.safetensors'));
    const f = await model.imageFeatures(single.get('pixel_values')!, single.get('image_sizes')!, ['vision.embed', 'vision.0.out', 'vision.1.out', 'vision.post_norm', 'projector.out']);
    close(f.taps.get('vision.embed')!, single.get('vision.hidden_states.0')!, 'vision.embed');
    close(f.taps.get('vision.0.out')!, single.get('vision.hidden_states.1')!, 'vision.0.out');
    close(f.taps.get('vision.1.out')!, single.get('vision.hidden_states.2')!, 'vision.1.out');
    close(f.taps.get('vision.post_norm')!, single.get('vision.last_hidden_state_post_layernorm')!, 'vision.post_norm');
    close(f.taps.get('projector.out')!, single.get('projector.output')!, 'projector.out');
    close(f.packed, single.get('image_features.packed')!, 'image.packed');
    close(model.embedWithImages(ids(single.get('input_ids')!), f.packed), single.get('hidden_states.0')!, 'lm.embed');

    // Three images, B and C zero-padded on the tile axis; C has the odd-padding 56x111 canvas.
    const multi = readAllTensors(join(HF_REF, 'runs/llava_multi.safetensors'));
    const m = await model.imageFeatures(multi.get('pixel_values')!, multi.get('image_sizes')!);
    assert.deepEqual(m.tilesPerImage, [13, 9, 3]);
    assert.deepEqual(m.lengths, [156, 84, 44]);
    close(m.packed, multi.get('image_features.packed')!, 'multi image.packed');
    close(model.embedWithImages(ids(multi.get('input_ids')!), m.packed), multi.get('hidden_states.0')!, 'multi lm.embed');

    // One feature too few for the prompt's image tokens: the error names both counts.
    const short = f32([155, 64], (f.packed.data as Float32Array).slice(0, 155 * 64));
    assert.throws(() => model.embedWithImages(ids(single.get('input_ids')!), short), (e: unknown) =>
      e instanceof KvlensInputError && /156 image tokens/.test(e.message) && /155 image features/.test(e.message));
  } finally {
    await model.dispose();
  }
});

test('loadModel dispatches on model_type and names config.json, the field and the supported values otherwise', async () => {
  const { loadModel } = await import('../../../src/models/index.js');
  const m = await loadModel(join(HF_REF, 'models/llava_onevision_tiny'));
  assert.equal(m.family, 'llava_onevision');
  await m.dispose();
  const q = await loadModel(join(HF_REF, 'models/qwen2_tiny'));
  assert.equal(q.family, 'qwen2');
  assert.deepEqual(q.dims, { lmLayers: 4, visionLayers: 0, kvHeads: 2, headDim: 16, dModel: 64 });
  await q.dispose();
  const bad = mkdtempSync(join(tmpdir(), 'kvlens-mamba-'));
  writeFileSync(join(bad, 'config.json'), JSON.stringify({ model_type: 'mamba' }));
  await assert.rejects(loadModel(bad), (e: unknown) =>
    e instanceof KvlensInputError && /config\.json/.test(e.message) && /model_type/.test(e.message) && /"mamba"/.test(e.message) && /llava_onevision/.test(e.message));
});

test('blockTextFromImage in layers 1 and 3 on every second image key reproduces HF llava_mask4d_perlayer', async () => {
  const { loadModel } = await import('../../../src/models/index.js');
  const { blockTextFromImage, lastLayers, imageRuns } = await import('../../../src/models/llava_onevision/intervene.js');
  const model = await loadModel(join(HF_REF, 'models/llava_onevision_tiny'));
  try {
    const single = readAllTensors(join(HF_REF, 'runs/llava_single.safetensors'));
    const ref = readAllTensors(join(HF_REF, 'runs/llava_mask4d_perlayer.safetensors'));
    const row = ids(single.get('input_ids')!)[0];
    assert.deepEqual(imageRuns(row, 303), [[5, 161]]);
    const spec = blockTextFromImage(row, 303, [1, 3], { keys: (o) => o % 2 === 0 });
    assert.deepEqual([spec.queries![0], spec.queries!.length, spec.keys.length, spec.keys[1], spec.queriesFrom], [161, 24, 78, 7, 185]);
    const out = await model.forward({ inputIds: [row], pixelValues: single.get('pixel_values')!, imageSizes: single.get('image_sizes')!, block: [spec], logitsAt: 'all', taps: ['lm.3.attn.k'] });
    close(out.logits!, ref.get('logits')!, 'logits');
    close(out.taps.get('lm.3.attn.k')!, ref.get('past_key_values.3.key')!, 'layer 3 keys');
    assert.deepEqual(lastLayers(2, 4), [2, 3]);
    assert.throws(() => blockTextFromImage(row, 303, [0], { image: 1 }), /no image 1/);
  } finally {
    await model.dispose();
  }
});
