// Parity of a standalone SigLIP vision model run (HF SiglipVisionModel outputs).
//   hidden_states.N  -> siglip.embed (N = 0) / siglip.{N-1}.out
//   attentions.L     -> attention probabilities of layer L
//   last_hidden_state -> siglip.post_norm;  pooler_output -> attention-pooling head


import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SiglipVisionModel } from '../../models/siglip/model.js';
import { loadImage } from '../../preprocess/image.js';
import { parseSiglipImageConfig, processSiglipImages } from '../../preprocess/siglip-image.js';
import { MODEL_TOL, PIXEL_TOL } from '../compare.js';
import { checkRawImages, indexed, RowSink, type FamilyContext } from './common.js';
import { pixelValuesFor } from './preprocessing.js';

export const SIGLIP_MODEL_TYPES = ['siglip_vision_model'];

export async function siglipParity(ctx: FamilyContext): Promise<RowSink> {
  const sink = new RowSink(ctx);
  await checkRawImages(sink);
  const model = await ctx.cache.get(`siglip:${ctx.modelDir}`, () => SiglipVisionModel.load(ctx.modelDir, { device: ctx.device, attentionProbs: true }), (m) => m.dispose());
  await checkSiglipProcessing(sink);
  const pixels = await pixelValuesFor(sink, model.config); // the stored pixels feed the model (by design)
  if (!pixels) return sink;
  const names = sink.specs().map((s) => s.name);
  const wantPooled = names.includes('pooler_output');
  const out = await model.forward(pixels, { pooled: wantPooled && model.config.vision_use_head, attentionProbs: true });
  for (const [i, name] of indexed(names, /^hidden_states\.(\d+)$/)) {
    const hook = i === 0 ? 'siglip.embed' : `siglip.${i - 1}.out`;
    const t = out.taps.get(hook);
    if (t) sink.compare(name, t, MODEL_TOL);
    else sink.mark(name, 'error', `the model has ${model.dims.layers} layers; no ${hook}`);
  }
  for (const [l, name] of indexed(names, /^attentions\.(\d+)$/)) {
    const t = out.attentionProbs?.[l];
    if (t) sink.compare(name, t, MODEL_TOL);
  }
  if (names.includes('last_hidden_state')) sink.compare('last_hidden_state', out.taps.get('siglip.post_norm')!, MODEL_TOL);
  if (wantPooled) {
    if (out.pooled) sink.compare('pooler_output', out.pooled, MODEL_TOL);
    else sink.mark('pooler_output', 'error', 'the model has no attention-pooling head');
  }
  return sink;
}

/** pixel_values recomputed from the run's raw images with kvlens' SigLIP processor (squash resize, rescale, normalise). */
async function checkSiglipProcessing(sink: RowSink): Promise<void> {
  const { fx, run, modelDir } = sink.ctx;
  const images = fx.runImages(run.name);
  const ppPath = join(modelDir, 'preprocessor_config.json');
  if (!sink.has('pixel_values') || !images || !existsSync(ppPath)) return; // pixelValuesFor reports it as read from the fixture
  const cfg = parseSiglipImageConfig(JSON.parse(readFileSync(ppPath, 'utf8')), ppPath);
  const decoded = await Promise.all(images.map((p) => loadImage(join(fx.root, p))));
  sink.compare('pixel_values', processSiglipImages(decoded, cfg), PIXEL_TOL, undefined, `from ${images.join(', ')}`);
}
