import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, symlinkSync, copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runParity } from '../../src/parity/run.js';
import { readAllTensors, writeSafetensors } from '../../src/tensor/safetensors.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { HF_REF, HF_REF_MORE } from '../helpers/fixtures.js';

const COMPLETE_RUNS = ['llava_single', 'llava_multi', 'llava_mask4d', 'llava_mask4d_perlayer', 'llava_prefix',
  'qwen2_prefill', 'qwen2_batch_leftpad', 'qwen2_mask4d_packed', 'qwen2_bf16_weights', 'siglip'];

test('parity on hf-reference: exit 0, every tensor of the LLaVA, Qwen2 and SigLIP runs computed and within tolerance', async () => {
  const all = await runParity(HF_REF);
  assert.deepEqual(all.rows.filter((r) => r.status === 'FAIL' || r.status === 'error'), []);
  assert.equal(all.summary.exitCode, 0);
  const fx = JSON.parse(readFileSync(join(HF_REF, 'manifest.json'), 'utf8')) as { tensors: { file: string; name: string }[] };
  for (const run of COMPLETE_RUNS) {
    const specs = fx.tensors.filter((t) => t.file === `runs/${run}.safetensors`);
    const rows = all.rows.filter((r) => r.run === run);
    assert.equal(rows.length, specs.length, `${run}: one row per manifest tensor`);
    // Only true inputs (random token ids, masks, explicit position ids) are taken from the fixture; all else is computed.
    for (const r of rows) {
      assert.ok(r.status === 'pass' || (r.status === 'input' && /^(input_ids|attention_mask|attention_mask_4d(\.base|\.layers)?|position_ids)$/.test(r.name)), `${run} ${r.name}: ${r.status} ${r.note ?? ''}`);
    }
  }
  // kvlens tokenizes the prompts and preprocesses the images itself: ids and sizes exact.
  for (const run of ['llava_single', 'llava_multi', 'llava_prefix']) {
    for (const name of ['input_ids', 'attention_mask', 'image_sizes']) {
      const r = all.rows.find((x) => x.run === run && x.name === name);
      if (r) assert.ok(r.status === 'pass' && r.maxAbs === 0, `${run} ${name}`);
    }
  }
  assert.equal(all.rows.find((r) => r.run === 'qwen2_prefill' && r.name === 'decode3.logits')?.status, 'pass');
  assert.match(all.rows.find((r) => r.run === 'qwen2_batch_leftpad' && r.name === 'logits')!.note!, /of 9216 elements compared/);
  // Families not implemented (yet) are skipped, never failed.
  for (const run of ['qwen2vl_single', 'qwen2vl_multi']) {
    const rows = all.rows.filter((r) => r.run === run);
    assert.ok(rows.length > 0 && rows.every((r) => r.status === 'skipped' || r.status === 'pass' || r.status === 'input' || r.status === 'from-fixture'), run);
  }
});

test('parity on hf-reference-more: LLaVA-NeXT (CLIP + Llama) and Qwen2.5-VL runs pass, nothing skipped or failed', async () => {
  const r = await runParity(HF_REF_MORE);
  assert.equal(r.summary.exitCode, 0);
  const fx = JSON.parse(readFileSync(join(HF_REF_MORE, 'manifest.json'), 'utf8')) as { tensors: { file: string }[] };
  assert.equal(r.rows.length, fx.tensors.length, 'one row per manifest tensor');
  assert.deepEqual(r.rows.filter((x) => !['pass', 'input', 'from-fixture'].includes(x.status)).map((x) => `${x.run} ${x.name} ${x.status}`), []);
  for (const run of ['llava_next_single', 'llava_next_prefix', 'qwen2_5_vl_single']) {
    assert.equal(r.rows.find((x) => x.run === run && x.name === 'logits')?.status, 'pass', run);
  }
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

test('a perturbed language-model tensor of a LLaVA run (one value of a cached key) fails parity', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-parity-'));
  copyFileSync(join(HF_REF, 'manifest.json'), join(dir, 'manifest.json'));
  symlinkSync(join(HF_REF, 'models'), join(dir, 'models'));
  symlinkSync(join(HF_REF, 'inputs'), join(dir, 'inputs'));
  mkdirSync(join(dir, 'runs'));
  // llava_prefix borrows llava_single's pixel_values: link every other run file.
  for (const f of readdirSync(join(HF_REF, 'runs'))) if (f !== 'llava_prefix.safetensors') symlinkSync(join(HF_REF, 'runs', f), join(dir, 'runs', f));
  const tensors = readAllTensors(join(HF_REF, 'runs/llava_prefix.safetensors'));
  const k = tensors.get('past_key_values.2.key')!;
  const data = Float32Array.from(k.data as Float32Array);
  data[1234] -= 5e-4;
  writeSafetensors(join(dir, 'runs/llava_prefix.safetensors'), { ...Object.fromEntries(tensors), 'past_key_values.2.key': { ...k, data } });
  const r = await runParity(dir, { runs: ['llava_prefix'] });
  assert.equal(r.summary.exitCode, 1);
  const failed = r.rows.filter((x) => x.status === 'FAIL');
  assert.deepEqual(failed.map((x) => x.name), ['past_key_values.2.key']);
  assert.ok(failed[0].maxAbs! > 4e-4 && failed[0].maxAbs! < 6e-4, `max abs ${failed[0].maxAbs}`);
});

test('without notes.prompts the LLaVA run falls back to the stored ids (reported as read from the fixture) and still passes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-parity-'));
  const manifest = JSON.parse(readFileSync(join(HF_REF, 'manifest.json'), 'utf8'));
  delete manifest.notes.prompts;
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  for (const d of ['models', 'inputs', 'runs']) symlinkSync(join(HF_REF, d), join(dir, d));
  const r = await runParity(dir, { runs: ['llava_single'] });
  assert.equal(r.summary.exitCode, 0);
  assert.equal(r.rows.find((x) => x.name === 'input_ids')?.status, 'from-fixture');
  assert.equal(r.rows.find((x) => x.name === 'pixel_values')?.status, 'pass');
  assert.equal(r.rows.find((x) => x.name === 'decode1.logits')?.status, 'pass');
});
