// loadModel / the CLI on bad inputs: every error names the file, tensor or field and what was expected, and the
// CLI exits non-zero. Broken copies of the fixture checkpoint are written to a temp dir (the fixture is never touched).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/models/index.js';
import { main } from '../../src/cli/main.js';
import { readAllTensors, writeSafetensors } from '../../src/tensor/safetensors.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { KvlensInputError } from '../../src/util/errors.js';
import { HF_REF } from '../helpers/fixtures.js';

const LLAVA = join(HF_REF, 'models/llava_onevision_tiny');
const tmp = mkdtempSync(join(tmpdir(), 'kvlens-loadmodel-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the LLaVA checkpoint dir whose model.safetensors is `weights` (bytes). */
function brokenCopy(name: string, weights: Buffer | ((dir: string) => void), config?: Record<string, unknown>): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  for (const f of readdirSync(LLAVA)) {
    if (f === 'model.safetensors' || statSync(join(LLAVA, f)).isDirectory()) continue;
    copyFileSync(join(LLAVA, f), join(dir, f));
  }
  if (typeof weights === 'function') weights(dir);
  else writeFileSync(join(dir, 'model.safetensors'), weights);
  if (config) writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

const original = readFileSync(join(LLAVA, 'model.safetensors'));
const inputError = (...patterns: RegExp[]) => (e: unknown) => {
  assert.ok(e instanceof KvlensInputError, `expected KvlensInputError, got ${String(e)}`);
  for (const p of patterns) assert.match(e.message, p);
  return true;
};

test('a truncated safetensors header is refused, naming the file', async () => {
  const dir = brokenCopy('truncated', original.subarray(0, 40));
  await assert.rejects(loadModel(dir), inputError(/model\.safetensors/, /truncated/));
});

test('a header that lies about the data (file cut short, or a shape its bytes cannot hold) names the tensor', async () => {
  const cut = brokenCopy('cut', original.subarray(0, original.length - 1000));
  await assert.rejects(loadModel(cut), inputError(/model\.safetensors/, /tensor "/, /beyond the data section/));

  // Same offsets, but image_newline claims 65 floats where its bytes hold 64.
  const n = Number(original.readBigUInt64LE(0));
  const header = JSON.parse(original.subarray(8, 8 + n).toString('utf8'));
  header.image_newline.shape = [header.image_newline.shape[0] + 1];
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const lying = brokenCopy('lying', Buffer.concat([len, json, original.subarray(8 + n)]));
  await assert.rejects(loadModel(lying), inputError(/tensor "image_newline"/, /needs 260/));
});

test('a missing weight is named', async () => {
  const missing = 'language_model.model.layers.2.mlp.up_proj.weight';
  const dir = brokenCopy('missing', (d) => {
    const all = Object.fromEntries(readAllTensors(join(LLAVA, 'model.safetensors'))) as Record<string, Tensor>;
    delete all[missing];
    writeSafetensors(join(d, 'model.safetensors'), all);
  });
  await assert.rejects(loadModel(dir), (e: unknown) => e instanceof Error && e.message.includes(missing));
});

test('an unsupported model_type names config.json, the field and the supported values', async () => {
  const cfg = JSON.parse(readFileSync(join(LLAVA, 'config.json'), 'utf8'));
  const dir = brokenCopy('mamba', original, { ...cfg, model_type: 'mamba' });
  await assert.rejects(loadModel(dir), inputError(/config\.json/, /"model_type" is "mamba"/, /llava_onevision/, /qwen2/));
});

test('image features that do not match the prompt\'s image tokens are refused before the language model runs', async () => {
  const model = await loadModel(LLAVA);
  try {
    const run = readAllTensors(join(HF_REF, 'runs/llava_single.safetensors'));
    const ids = Array.from(run.get('input_ids')!.data as BigInt64Array, Number);
    const oneLess = ids.filter((id, i) => !(id === 303 && i === ids.indexOf(303)));
    await assert.rejects(
      model.forward({ inputIds: [oneLess], pixelValues: run.get('pixel_values')!, imageSizes: run.get('image_sizes')!, taps: ['lm.0.attn.k'] }),
      inputError(/input_ids/, /155 image tokens/, /156 image features/));
    // Image tokens but no image at all.
    await assert.rejects(model.forward({ inputIds: [ids] }), inputError(/156 image tokens/, /0 image features/));
    // Unknown or out-of-range taps fail up front, before any session runs.
    const before = (model as unknown as { visionRuns: number }).visionRuns;
    await assert.rejects(model.forward({ inputIds: [ids], pixelValues: run.get('pixel_values')!, imageSizes: run.get('image_sizes')!, taps: ['lm.9.attn.k'] }), /layer 9 is out of range/);
    await assert.rejects(model.forward({ inputIds: [ids], taps: ['vision.0.out'] }), /need pixelValues/);
    assert.equal((model as unknown as { visionRuns: number }).visionRuns, before);
  } finally {
    await model.dispose();
  }
});

test('the CLI: parity on a fixture set with a broken checkpoint exits 1 naming the tensor; a missing directory exits 2', async () => {
  const fx = join(tmp, 'fixture');
  mkdirSync(join(fx, 'models'), { recursive: true });
  copyFileSync(join(HF_REF, 'manifest.json'), join(fx, 'manifest.json'));
  for (const d of ['runs', 'inputs']) symlinkSync(join(HF_REF, d), join(fx, d));
  for (const m of readdirSync(join(HF_REF, 'models'))) if (m !== 'llava_onevision_tiny') symlinkSync(join(HF_REF, 'models', m), join(fx, 'models', m));
  const missing = 'language_model.model.norm.weight';
  const broken = brokenCopy('cli-missing', (d) => {
    const all = Object.fromEntries(readAllTensors(join(LLAVA, 'model.safetensors'))) as Record<string, Tensor>;
    delete all[missing];
    writeSafetensors(join(d, 'model.safetensors'), all);
  });
  symlinkSync(broken, join(fx, 'models', 'llava_onevision_tiny'));
  const out = await captureStdout(() => main(['parity', fx, '--run', 'llava_single', '--json']));
  assert.equal(out.code, 1);
  const report = JSON.parse(out.text) as { rows: { status: string; note?: string }[] };
  assert.ok(report.rows.some((r) => r.status === 'error' && r.note?.includes(missing)), out.text.slice(0, 2000));

  const err = await captureStdout(() => main(['parity', join(tmp, 'no-such-dir')]), 'error');
  assert.equal(err.code, 2);
  assert.match(err.text, /manifest\.json not found/);
});

async function captureStdout(fn: () => Promise<number>, stream: 'log' | 'error' = 'log'): Promise<{ code: number; text: string }> {
  const orig = console[stream];
  let text = '';
  console[stream] = (...a: unknown[]) => { text += a.join(' ') + '\n'; };
  try {
    return { code: await fn(), text };
  } finally {
    console[stream] = orig;
  }
}
