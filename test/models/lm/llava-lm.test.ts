// The LLaVA-OneVision language model (Qwen2 under "language_model.", tied head) fed HF's stored
// hidden_states.0 as inputs_embeds: plain, dense 4-D mask, per-layer blocking (dense AND structured), text prefix.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadQwen2 } from '../../../src/models/qwen2/index.js';
import { type DecoderLM, type BlockSpec, span } from '../../../src/models/lm/index.js';
import type { Tensor } from '../../../src/tensor/tensor.js';
import { close, ids, LLAVA_DIR, loadRun, ref } from '../qwen2/helpers.js';

const IMAGE_TOKEN = 303;
let lm: DecoderLM;
before(async () => {
  const cfg = JSON.parse(readFileSync(join(LLAVA_DIR, 'config.json'), 'utf8'));
  lm = await loadQwen2(LLAVA_DIR, { prefix: 'language_model.', rawConfig: { model_type: 'qwen2', ...cfg.text_config }, threads: 1 });
});
after(async () => { await lm.dispose(); });

const TAPS = ['lm.*.resid', 'lm.*.attn.k', 'lm.*.attn.v', 'lm.final_norm', 'logits'];

function checkRun(run: Map<string, Tensor>, out: Awaited<ReturnType<DecoderLM['forward']>>, what: string): void {
  for (let l = 0; l < 3; l++) close(out.taps.get(`lm.${l}.resid`), ref(run, `hidden_states.${l + 1}`), `${what} resid ${l}`);
  close(out.taps.get('lm.final_norm'), ref(run, 'hidden_states.4'), `${what} final_norm`);
  for (let l = 0; l < 4; l++) {
    close(out.taps.get(`lm.${l}.attn.k`), ref(run, `past_key_values.${l}.key`), `${what} k ${l}`);
    close(out.taps.get(`lm.${l}.attn.v`), ref(run, `past_key_values.${l}.value`), `${what} v ${l}`);
  }
  close(out.logits, ref(run, 'logits'), `${what} logits`);
}

async function withDecode(name: string): Promise<void> {
  const run = loadRun(name);
  const out = await lm.forward({ inputsEmbeds: ref(run, 'hidden_states.0') as Tensor<'float32'>, taps: TAPS, logitsAt: 'all' });
  checkRun(run, out, name);
  const d = await lm.forward({ inputIds: ids(ref(run, 'decode1.input_ids')), past: out.cache, taps: ['lm.embed', 'lm.final_norm'] });
  close(d.taps.get('lm.embed'), ref(run, 'decode1.hidden_states.0'), `${name} decode1 embed`);
  close(d.taps.get('lm.final_norm'), ref(run, 'decode1.hidden_states.4'), `${name} decode1 final_norm`);
  close(d.logits, ref(run, 'decode1.logits'), `${name} decode1 logits`);
  for (let l = 0; l < 4; l++) close(d.cache!.keys[l], ref(run, `decode1.past_key_values.${l}.key`), `${name} decode1 key ${l}`);
}

test('llava_single: LM part from inputs_embeds, plus one cached decode step', async () => { await withDecode('llava_single'); });
test('llava_prefix: text before the image, plus one cached decode step', async () => { await withDecode('llava_prefix'); });

test('llava_mask4d: dense 4-D blocking mask in every layer', async () => {
  const run = loadRun('llava_mask4d');
  const out = await lm.forward({ inputsEmbeds: ref(run, 'hidden_states.0') as Tensor<'float32'>, denseMask: ref(run, 'attention_mask_4d') as Tensor<'float32'>, taps: TAPS, logitsAt: 'all' });
  checkRun(run, out, 'llava_mask4d');
});

test('llava_mask4d_perlayer: dense per-layer masks and the structured block spec both match HF', async () => {
  const run = loadRun('llava_mask4d_perlayer');
  const embeds = ref(run, 'hidden_states.0') as Tensor<'float32'>;
  const layers = [...(ref(run, 'attention_mask_4d.layers').data as BigInt64Array)].map(Number);
  const blocking = ref(run, 'attention_mask_4d') as Tensor<'float32'>;
  const dense = await lm.forward({
    inputsEmbeds: embeds, denseMask: ref(run, 'attention_mask_4d.base') as Tensor<'float32'>,
    layerMasks: new Map(layers.map((l) => [l, blocking])), taps: TAPS, logitsAt: 'all',
  });
  checkRun(run, dense, 'perlayer dense');
  // Structured: text after the image blocked from image keys at even offsets of the image run, in layers 1 and 3.
  const tokens = ids(loadRun('llava_single').get('input_ids')!)[0];
  const first = tokens.indexOf(IMAGE_TOKEN);
  const last = tokens.lastIndexOf(IMAGE_TOKEN);
  const spec: BlockSpec = { layers, queries: span(last + 1, tokens.length), keys: span(first, last + 1).filter((p) => (p - first) % 2 === 0) };
  assert.equal(spec.keys.length, 78);
  const structured = await lm.forward({ inputsEmbeds: embeds, block: [spec], taps: TAPS, logitsAt: 'all' });
  checkRun(run, structured, 'perlayer structured');
});
