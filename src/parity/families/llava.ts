// Parity of a LLaVA-OneVision run. From the run's stored pixel_values and image_sizes:
//   vision.hidden_states.N -> vision.embed / vision.{N-1}.out;  vision.last_hidden_state_post_layernorm -> vision.post_norm
//   projector.output -> projector.out;  image_features.packed / .lengths -> packing;  hidden_states.0 -> embeddings
//   with the image features scattered in. pixel_values / image_sizes are recomputed from inputs/*.png with the
// kvlens LLaVA-OneVision image processor. Decoder tensors (later hidden states, K/V, attentions, logits, decode
// steps) come from the language model.

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { LlavaOnevision } from '../../models/llava_onevision/model.js';
import { loadImage } from '../../preprocess/image.js';
import { parseAnyresImageConfig, processAnyresImages } from '../../preprocess/llava-onevision-image.js';
import { i64, type Tensor } from '../../tensor/tensor.js';
import { EXACT, MODEL_TOL, PIXEL_TOL } from '../compare.js';
import { checkRawImages, indexed, RowSink, type FamilyContext } from './common.js';
import { markPreprocessing, storedPixelValues } from './preprocessing.js';

export const LLAVA_MODEL_TYPES = ['llava_onevision'];

function idsOf(t: Tensor): number[][] {
  const [B, S] = t.shape;
  const v = Array.from(t.data as BigInt64Array, Number);
  return Array.from({ length: B }, (_, b) => v.slice(b * S, (b + 1) * S));
}

/** pixel_values / image_sizes from the raw images with kvlens' processor (compared, never fed to the model). */
async function checkImageProcessing(sink: RowSink, model: LlavaOnevision): Promise<void> {
  const { fx, run, modelDir } = sink.ctx;
  const images = fx.runImages(run.name);
  const ppPath = join(modelDir, 'preprocessor_config.json');
  const targets = ['pixel_values', 'image_sizes'].filter((n) => sink.has(n));
  if (!targets.length) return;
  if (!images || !existsSync(ppPath)) {
    for (const n of targets) sink.mark(n, 'from-fixture', !images ? 'notes.run_images does not list this run\'s images' : 'the model has no preprocessor_config.json');
    return;
  }
  const cfg = parseAnyresImageConfig(JSON.parse(readFileSync(ppPath, 'utf8')), ppPath);
  const decoded = await Promise.all(images.map((p) => loadImage(join(fx.root, p))));
  const out = processAnyresImages(decoded, cfg, { patchSize: model.config.vision.patch_size, maxTiles: model.config.anyresMaxTiles });
  if (sink.has('pixel_values')) sink.compare('pixel_values', out.pixelValues, PIXEL_TOL, undefined, `from ${images.join(', ')}`);
  if (sink.has('image_sizes')) sink.compare('image_sizes', out.imageSizes, EXACT);
}

export async function llavaParity(ctx: FamilyContext): Promise<RowSink> {
  const sink = new RowSink(ctx);
  await checkRawImages(sink);
  const model = await ctx.cache.get(`llava:${ctx.modelDir}`, () => LlavaOnevision.load(ctx.modelDir, { device: ctx.device }), (m) => m.dispose());
  await checkImageProcessing(sink, model);
  markPreprocessing(sink, ['input_ids', 'attention_mask']);
  for (const s of sink.specs()) if (/^attention_mask_4d/.test(s.name)) sink.mark(s.name, 'input', 'the intervention applied to the decoder');
  const names = sink.specs().map((s) => s.name);

  const pv = storedPixelValues(sink);
  const sizesRun = pv && pv.from !== ctx.run.name ? ctx.fx.run(pv.from) : ctx.run;
  const sizes = sink.has('image_sizes') ? sink.ref('image_sizes') : pv ? ctx.fx.read(sizesRun, 'image_sizes') : undefined;
  const visionHooks = [...indexed(names, /^vision\.hidden_states\.(\d+)$/)].map(([i]) => (i === 0 ? 'vision.embed' : `vision.${i - 1}.out`));
  let packed: Tensor<'float32'> | undefined;
  if (pv && sizes) {
    const wanted = [...visionHooks, 'vision.post_norm', 'projector.out'];
    const feats = await model.imageFeatures(pv.tensor, sizes, wanted.filter((h) => model.visionHooks.includes(h)));
    packed = feats.packed;
    for (const [i, name] of indexed(names, /^vision\.hidden_states\.(\d+)$/)) {
      const t = feats.taps.get(i === 0 ? 'vision.embed' : `vision.${i - 1}.out`);
      if (t) sink.compare(name, t, MODEL_TOL);
    }
    if (sink.has('vision.last_hidden_state_post_layernorm')) sink.compare('vision.last_hidden_state_post_layernorm', feats.taps.get('vision.post_norm')!, MODEL_TOL);
    if (sink.has('projector.output')) sink.compare('projector.output', feats.taps.get('projector.out')!, MODEL_TOL);
    if (sink.has('image_features.packed')) sink.compare('image_features.packed', feats.packed, MODEL_TOL);
    if (sink.has('image_features.lengths')) sink.compare('image_features.lengths', i64([feats.lengths.length], feats.lengths), EXACT);
  }
  if (sink.has('input_ids') && sink.has('hidden_states.0')) {
    const embeds = model.embedWithImages(idsOf(sink.ref('input_ids')), packed);
    sink.compare('hidden_states.0', embeds, MODEL_TOL, undefined, pv && pv.from !== ctx.run.name ? `pixel_values of run ${pv.from}` : undefined);
  }
  for (const [step, name] of indexed(names, /^decode(\d+)\.hidden_states\.0$/)) {
    const ids = `decode${step}.input_ids`;
    if (sink.has(ids)) sink.compare(name, model.embedWithImages(idsOf(sink.ref(ids))), MODEL_TOL);
  }
  return sink;
}
