import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, symlinkSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runParity } from '../../src/parity/run.js';
import { readAllTensors, writeSafetensors } from '../../src/tensor/safetensors.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { HF_REF, HF_REF_MORE } from '../helpers/fixtures.js';

test('parity on hf-reference: SigLIP run passes with exit 0; nothing computed fails; unsupported families skipped', async () => {
  const siglip = await runParity(HF_REF, { runs: ['siglip'] });
  assert.equal(siglip.summary.exitCode, 0);
  assert.ok(siglip.rows.filter((r) => r.status === 'pass').length >= 7);

  const all = await runParity(HF_REF);
  assert.deepEqual(all.rows.filter((r) => r.status === 'FAIL'), []);
  const skipped = new Set(all.rows.filter((r) => r.status === 'skipped').map((r) => r.run));
  assert.ok(skipped.has('qwen2vl_single') && skipped.has('qwen2vl_multi'));
  // The image path of every LLaVA run is checked against the reference.
  for (const name of ['image_features.packed', 'hidden_states.0', 'pixel_values', 'image_sizes']) {
    assert.equal(all.rows.find((r) => r.run === 'llava_multi' && r.name === name)?.status, 'pass', name);
  }
});

test('parity on hf-reference-more: every run maps to its model and is skipped (LLaVA-NeXT, Qwen2.5-VL not implemented)', async () => {
  const r = await runParity(HF_REF_MORE);
  assert.equal(r.summary.exitCode, 0);
  assert.equal(r.rows.length, 3);
  assert.ok(r.rows.every((x) => x.status === 'skipped'));
  assert.match(r.rows[0].note!, /llava_next/);
});

test('a perturbed reference tensor makes parity fail with a non-zero exit code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-parity-'));
  copyFileSync(join(HF_REF, 'manifest.json'), join(dir, 'manifest.json'));
  symlinkSync(join(HF_REF, 'models'), join(dir, 'models'));
  symlinkSync(join(HF_REF, 'inputs'), join(dir, 'inputs'));
  mkdirSync(join(dir, 'runs'));
  const tensors = readAllTensors(join(HF_REF, 'runs/siglip.safetensors'));
  const hs = tensors.get('hidden_states.1')!;
  const data = Float32Array.from(hs.data as Float32Array);
  data[7] += 1e-3;
  const out: Record<string, Tensor> = Object.fromEntries(tensors);
  out['hidden_states.1'] = { ...hs, data };
  writeSafetensors(join(dir, 'runs/siglip.safetensors'), out);
  const r = await runParity(dir, { runs: ['siglip'] });
  assert.equal(r.summary.exitCode, 1);
  const bad = r.rows.find((x) => x.name === 'hidden_states.1')!;
  assert.equal(bad.status, 'FAIL');
  assert.ok(bad.maxAbs! > 9e-4 && bad.maxAbs! < 1.1e-3, `max abs ${bad.maxAbs}`);
});
