// The encoder baseline is read where the MLM's projector reads its own tower: vision_feature_layer indexes
// hidden_states (0 = embeddings), so -1 of the 26-layer LLaVA-OV port is layer 25 and -2 of CLIP's 24 is layer 22.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encoderRows, projectorInputTaps } from '../../src/experiments/encoder-rows.js';

async function withConfig<T>(cfg: object, f: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-enc-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    return await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('projector-input layer from vision_feature_layer; post_norm only on request; no layer for a tower trained with the MLM', async () => {
  await withConfig({ vision_feature_layer: -1, vision_config: { num_hidden_layers: 26 } }, async (d) => {
    assert.deepEqual((await projectorInputTaps(d))!.taps, ['baseline.25.out']);
    assert.deepEqual((await encoderRows(d, '/towers/siglip', ['projector-input', 'post_norm']))!.taps, ['baseline.25.out', 'baseline.post_norm']);
    assert.equal(await encoderRows(d, undefined, ['projector-input']), undefined, 'no baseline directory: no rows');
  });
  await withConfig({ vision_feature_layer: -2, vision_feature_select_strategy: 'default', vision_config: { num_hidden_layers: 24 } }, async (d) => {
    const p = (await projectorInputTaps(d))!;
    assert.deepEqual(p.taps, ['baseline.22.out']);
    assert.match(p.note, /select strategy "default" \(grid tokens, no CLS\)/);
  });
  await withConfig({ vision_feature_layer: [0, -1], vision_config: { num_hidden_layers: 4 } }, async (d) => {
    assert.deepEqual((await projectorInputTaps(d))!.taps, ['baseline.embed', 'baseline.3.out']);
  });
  await withConfig({ model_type: 'qwen2_5_vl', vision_config: { depth: 32 } }, async (d) => {
    assert.equal(await projectorInputTaps(d), null);
    await assert.rejects(encoderRows(d, '/towers/x', ['projector-input']), /no vision_feature_layer .* leave encoderBaseline out/);
    assert.deepEqual((await encoderRows(d, '/towers/x', ['post_norm']))!.taps, ['baseline.post_norm']);
  });
});
