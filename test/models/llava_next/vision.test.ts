// LLaVA-NeXT image side vs transformers 4.46.1: CLIP embeddings / hidden states / pooled CLS, projector output
// and packed features, from the fixture's stored pixel_values (tiny CLIP + projector of hf-reference-more).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HF_REF_MORE } from '../../helpers/fixtures.js';
import { readAllTensors, WeightSet } from '../../../src/tensor/safetensors.js';
import { maxAbsDiff, tensor, type Tensor } from '../../../src/tensor/tensor.js';
import { parseLlavaNextConfig } from '../../../src/models/llava_next/config.js';
import { LlavaNextVision, PRE_LAYRNORM } from '../../../src/models/llava_next/vision.js';
import { llavaNextTilesForImage, llavaNextTokenCount, packLlavaNext } from '../../../src/models/llava_next/pack.js';

const dir = join(HF_REF_MORE, 'models', 'llava_next_tiny');
const TOL = 1e-4;

function f32of(t: Tensor): Float32Array { return t.data as Float32Array; }

for (const run of ['llava_next_single', 'llava_next_prefix']) {
  test(`LLaVA-NeXT vision + projector + packing match HF (${run})`, async () => {
    const cfg = parseLlavaNextConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
    const ws = WeightSet.open(dir);
    const ref = readAllTensors(join(HF_REF_MORE, 'runs', `${run}.safetensors`));
    const pv = ref.get('pixel_values')!; // [1, tiles, 3, 42, 42]
    const [h, w] = Array.from(ref.get('image_sizes')!.data as BigInt64Array, Number);
    const size = { height: h, width: w };
    const nTiles = llavaNextTilesForImage(size, cfg);
    assert.equal(nTiles, pv.shape[1]);
    const pixel = tensor('float32', pv.shape.slice(1), f32of(pv));
    const vision = await LlavaNextVision.create(cfg, ws, 64);
    try {
      const out = await vision.run(pixel, ['vision.embed', PRE_LAYRNORM, 'vision.0.out', 'vision.1.out', 'vision.post_norm', 'projector.out']);
      const cmp = (got: string, want: string) => {
        const d = maxAbsDiff(f32of(out.get(got)!), f32of(ref.get(want)!));
        assert.ok(d < TOL, `${got} vs ${want}: max abs diff ${d}`);
      };
      cmp('vision.embed', 'vision.embeddings');
      cmp(PRE_LAYRNORM, 'vision.hidden_states.0');
      cmp('vision.0.out', 'vision.hidden_states.1');
      cmp('vision.1.out', 'vision.hidden_states.2');
      cmp('projector.out', 'projector.output');
      // pooler_output = post_layernorm(CLS)
      const post = f32of(out.get('vision.post_norm')!);
      const pooled = new Float32Array(nTiles * 48);
      for (let t = 0; t < nTiles; t++) pooled.set(post.subarray(t * 10 * 48, t * 10 * 48 + 48), t * 48);
      assert.ok(maxAbsDiff(pooled, f32of(ref.get('vision.pooler_output')!)) < TOL);

      const newline = f32of(ws.read('image_newline'));
      const packed = packLlavaNext(f32of(out.get('projector.out')!), [nTiles], [size], cfg, 64, newline);
      const want = ref.get('image_features.packed')!;
      assert.deepEqual(packed.lengths, [want.shape[0]]);
      assert.equal(llavaNextTokenCount(size, cfg), want.shape[0]);
      const d = maxAbsDiff(packed.data, f32of(want));
      assert.ok(d < TOL, `packed: ${d}`);
      const ids = Array.from(ref.get('input_ids')!.data as BigInt64Array, Number);
      assert.equal(ids.filter((x) => x === cfg.imageTokenIndex).length, want.shape[0]);
    } finally {
      await vision.dispose();
    }
  });
}
