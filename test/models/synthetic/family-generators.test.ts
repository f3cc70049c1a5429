// Tiny generated LLaVA-NeXT, Qwen2.5-VL and Qwen2-VL checkpoints: the weight names of the fixture models (modulo layer
// counts), loadable by loadModel + loadProcessor, and a forward from a prompt with an image runs with the right shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeLlavaNextCheckpoint, TINY_LLAVA_NEXT } from '../../../src/models/synthetic/llava-next.js';
import { writeQwen2VlCheckpoint, TINY_QWEN2_5_VL, TINY_QWEN2_VL } from '../../../src/models/synthetic/qwen2-vl.js';
import { loadModel } from '../../../src/models/index.js';
import { loadProcessor } from '../../../src/preprocess/load.js';
import { WeightSet } from '../../../src/tensor/safetensors.js';
import type { RgbImage } from '../../../src/preprocess/image.js';
import { HF_REF, HF_REF_MORE } from '../../helpers/fixtures.js';

const pattern = (n: string) => n.replace(/\.(layers|blocks)\.\d+\./, '.$1.N.');
const names = (dir: string) => new Set(WeightSet.open(dir).names().map(pattern));

function gradient(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([(x * 7) % 256, (y * 5) % 256, ((x + y) * 3) % 256], (y * width + x) * 3);
  return { width, height, data };
}

const cases = [
  { name: 'LLaVA-NeXT', write: (d: string) => writeLlavaNextCheckpoint(d), ref: join(HF_REF_MORE, 'models', 'llava_next_tiny'), layers: TINY_LLAVA_NEXT.text.layers },
  { name: 'Qwen2.5-VL', write: (d: string) => writeQwen2VlCheckpoint(d, TINY_QWEN2_5_VL), ref: join(HF_REF_MORE, 'models', 'qwen2_5_vl_tiny'), layers: TINY_QWEN2_5_VL.text.layers },
  { name: 'Qwen2-VL', write: (d: string) => writeQwen2VlCheckpoint(d, TINY_QWEN2_VL), ref: join(HF_REF, 'models', 'qwen2vl_tiny'), layers: TINY_QWEN2_VL.text.layers },
];

for (const c of cases) {
  test(`generated tiny ${c.name}: fixture weight layout, loads, forward from a prompt with an image`, async () => {
    const dir = c.write(mkdtempSync(join(tmpdir(), 'kvlens-gen-')));
    assert.deepEqual(names(dir), names(c.ref));
    const proc = await loadProcessor(dir);
    const model = await loadModel(dir);
    try {
      assert.equal(model.dims.lmLayers, c.layers);
      const p = await proc.prepare({ images: [gradient(150, 100)], question: 'What is the object in the image?' });
      assert.ok(p.tokenMap.runs.length === 1 && p.tokenMap.runs[0].end > p.tokenMap.runs[0].start);
      const out = await model.forward({
        inputIds: p.inputIds, pixelValues: p.pixelValues, taps: ['lm.0.attn.k', 'image.packed'], logitsAt: 'last',
        ...(p.imageSizes ? { imageSizes: p.imageSizes } : {}), ...(p.imageGridThw ? { imageGridThw: p.imageGridThw } : {}),
      });
      const S = p.inputIds.shape[1];
      const run = p.tokenMap.runs[0];
      assert.equal(out.taps.get('image.packed')!.shape[0], run.end - run.start, 'one packed feature per image token');
      assert.equal(out.taps.get('lm.0.attn.k')!.shape[2], S);
      assert.ok(Array.from(out.logits!.data).every(Number.isFinite));
      // the chat template answers with the family's assistant header
      assert.match(p.prompt, c.name === 'LLaVA-NeXT' ? /<\|start_header_id\|>assistant<\|end_header_id\|>\n\n$/ : /<\|im_start\|>assistant\n$/);
    } finally {
      await model.dispose();
    }
  });
}
