// Parity of a decoder-only Qwen2 run (Qwen2ForCausalLM): the run's token ids (random ids, no prompt text) are its
// input; masks / explicit position ids are fed as given; every LM tensor and decode step is recomputed. For a
// left-padded batch only real tokens are compared (HF's padded rows are a uniform softmax over nothing).

import { loadModel } from '../../models/index.js';
import type { KvlensModel } from '../../models/types.js';
import { RowSink, type FamilyContext } from './common.js';
import { compareLmStep, lmTargets, maskInputs, paddingRows, runDecodeSteps, tapsOf } from './decoder.js';

export const QWEN2_MODEL_TYPES = ['qwen2'];

export async function qwen2Parity(ctx: FamilyContext): Promise<RowSink> {
  const sink = new RowSink(ctx);
  const model = await ctx.cache.get<KvlensModel>(`model:${ctx.modelDir}`, () => loadModel(ctx.modelDir, { device: ctx.device }), (m) => m.dispose());
  if (!sink.has('input_ids')) return sink; // every tensor is reported as not computable
  const inputIds = sink.ref('input_ids');
  sink.mark('input_ids', 'input', ctx.fx.prompt(ctx.run.name) ? 'token ids of the run' : 'token ids of the run (no prompt text recorded)');
  const padding = paddingRows(sink);
  if (sink.has('attention_mask')) sink.mark('attention_mask', 'input', padding ? '2-D padding mask; only real tokens are compared' : '2-D mask (all ones)');
  const names = sink.specs().map((s) => s.name);
  const targets = lmTargets(names, '', model.dims.lmLayers);
  const prefill = await model.forward({
    inputIds, ...maskInputs(sink), ...(padding ? { attentionMask2d: padding } : {}), taps: tapsOf(targets), logitsAt: 'all',
  });
  compareLmStep(sink, targets, prefill, padding);
  await runDecodeSteps(sink, model, prefill);
  return sink;
}
