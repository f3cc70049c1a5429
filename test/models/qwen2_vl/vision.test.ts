// Qwen2-VL / Qwen2.5-VL vision tower vs transformers: patch embedding, 2-D rotary angles, window order and
// cu_seqlens, every block output (both orders), merger, and M-RoPE ids computed by kvlens from input_ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HF_REF, HF_REF_MORE } from '../../helpers/fixtures.js';
import { readAllTensors, WeightSet } from '../../../src/tensor/safetensors.js';
import { maxAbsDiff, type Tensor } from '../../../src/tensor/tensor.js';
import { parseQwen2VlConfig } from '../../../src/models/qwen2_vl/config.js';
import { QwenVisionTower } from '../../../src/models/qwen2_vl/vision.js';
import { gridsFrom, ropeIndex, toWindowOrder, visionRotary, windowIndex } from '../../../src/models/qwen2_vl/positions.js';

// 1e-4 absolute, widened by 2e-6 x the tensor's largest magnitude: qwen2vl_tiny's patch embeddings reach |x| ~ 170,
// where float32 sums of 1176 products differ by a few 1e-4 between summation orders (transformers' reference
// BLAS adds sequentially; a sequential float32 sum in JS differs from the float64 value by 2.6e-4 there too).
const tolFor = (ref: Float32Array) => 1e-4 + 2e-6 * ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const f = (t: Tensor) => t.data as Float32Array;
const ints = (t: Tensor) => Array.from(t.data as BigInt64Array, Number);

const CASES = [
  { root: HF_REF, model: 'qwen2vl_tiny', run: 'qwen2vl_single' },
  { root: HF_REF, model: 'qwen2vl_tiny', run: 'qwen2vl_multi' },
  { root: HF_REF_MORE, model: 'qwen2_5_vl_tiny', run: 'qwen2_5_vl_single' },
];

for (const c of CASES) {
  test(`${c.run}: vision tower, merger and M-RoPE ids match HF`, async () => {
    const dir = join(c.root, 'models', c.model);
    const cfg = parseQwen2VlConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
    const ref = readAllTensors(join(c.root, 'runs', `${c.run}.safetensors`));
    const grids = gridsFrom(ref.get('image_grid_thw')!.data as BigInt64Array);
    const ids = ints(ref.get('input_ids')!);
    // M-RoPE ids and deltas computed by kvlens from input_ids + image_grid_thw.
    const ri = ropeIndex([ids], grids, cfg);
    assert.deepEqual(ri.positions.flatMap((a) => a[0]), ints(ref.get('position_ids')!));
    assert.deepEqual(ri.ropeDeltas, ints(ref.get('rope_deltas')!));
    if (ref.has('decode1.position_ids')) {
      assert.deepEqual(ints(ref.get('decode1.position_ids')!), [0, 1, 2].map(() => ids.length + ri.ropeDeltas[0]));
    }
    if (ref.has('vision.rot_pos_emb')) assert.ok(maxAbsDiff(visionRotary(grids, cfg.vision).angles, f(ref.get('vision.rot_pos_emb')!)) === 0);
    const win = windowIndex(grids, cfg.vision);
    if (ref.has('vision.window_index')) {
      assert.deepEqual(win.windowIndex, ints(ref.get('vision.window_index')!));
      assert.deepEqual(win.cuWindowSeqlens, ints(ref.get('vision.cu_window_seqlens')!));
    }
    const tower = await QwenVisionTower.create(cfg.vision, WeightSet.open(dir));
    try {
      const fetch = tower.outputNames;
      const out = await tower.run(ref.get('pixel_values')!, grids, fetch);
      const check = (got: Float32Array, name: string) => {
        const want = f(ref.get(name)!);
        const d = maxAbsDiff(got, want);
        assert.ok(d < tolFor(want), `${name}: max abs diff ${d} (tolerance ${tolFor(want)})`);
      };
      if (ref.has('vision.patch_embed.output')) check(f(out.get('vision.embed')!), 'vision.patch_embed.output');
      for (let l = 0; l < cfg.vision.depth; l++) {
        const name = `vision.blocks.${l}.output`;
        if (ref.has(name)) check(f(out.get(`vision.${l}.out`)!), name);
        if (ref.has(`${name}_window_order`)) check(toWindowOrder(f(out.get(`vision.${l}.out`)!), cfg.vision.dim, win.windowIndex, 4), `${name}_window_order`);
      }
      if (ref.has('vision.merger.ln_q_output')) check(f(out.get('vision.post_norm')!), 'vision.merger.ln_q_output');
      check(f(out.get('projector.out')!), 'vision.merger_output');
    } finally {
      await tower.dispose();
    }
  });
}
