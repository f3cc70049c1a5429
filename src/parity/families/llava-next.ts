// Parity of a LLaVA-NeXT run (CLIP + projector + Llama). From the run's stored pixel_values / image_sizes /
// input_ids: vision.embeddings -> vision.embed; vision.hidden_states.0 -> pre_layrnorm output; vision.hidden_states.N
// -> vision.{N-1}.out; vision.pooler_output -> post_layernorm(CLS); projector.output; image_features.*; every decoder
// tensor; decode steps continue the cache. pixel_values / image_sizes are recomputed from inputs/*.png.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LlavaNext } from '../../models/llava_next/model.js';
import { PRE_LAYRNORM } from '../../models/llava_next/vision.js';
import { loadImage } from '../../preprocess/image.js';
import { parseAnyresImageConfig, processAnyresImages } from '../../preprocess/llava-onevision-image.js';
import { f32, i64, toF32, type Tensor } from '../../tensor/tensor.js';
import { EXACT, MODEL_TOL, PIXEL_TOL } from '../compare.js';
import { checkRawImages, indexed, RowSink, type FamilyContext } from './common.js';
import { markPreprocessing } from './preprocessing.js';
import { promptIds } from './prompt-ids.js';
import { compareDecoder, decodeSteps, decoderTapsFor, idRows } from './decoder-rows.js';

export const LLAVA_NEXT_MODEL_TYPES = ['llava_next'];

async function checkProcessing(sink: RowSink, model: LlavaNext): Promise<void> {
  const { fx, run, modelDir } = sink.ctx;
  const images = fx.runImages(run.name);
  const ppPath = join(modelDir, 'preprocessor_config.json');
  const targets = ['pixel_values', 'image_sizes'].filter((n) => sink.has(n));
  if (!targets.length) return;
  if (!images || !existsSync(ppPath)) {
    markPreprocessing(sink, targets);
    return;
  }
  try {
    const cfg = parseAnyresImageConfig(JSON.parse(readFileSync(ppPath, 'utf8')), ppPath);
    const decoded = await Promise.all(images.map((p) => loadImage(join(fx.root, p))));
    const out = processAnyresImages(decoded, cfg, { patchSize: model.config.vision.patch_size, maxTiles: Infinity });
    if (sink.has('pixel_values')) sink.compare('pixel_values', out.pixelValues, PIXEL_TOL, undefined, `from ${images.join(', ')}`);
    if (sink.has('image_sizes')) sink.compare('image_sizes', out.imageSizes, EXACT);
  } catch (e) {
    for (const n of targets) sink.mark(n, 'error', `kvlens processor: ${(e as Error).message}`);
  }
}

export async function llavaNextParity(ctx: FamilyContext): Promise<RowSink> {
  const sink = new RowSink(ctx);
  await checkRawImages(sink);
  const model = await ctx.cache.get(`llava_next:${ctx.modelDir}`, () => LlavaNext.load(ctx.modelDir, { device: ctx.device }), (m) => m.dispose());
  await checkProcessing(sink, model);
  const computedIds = await promptIds(sink);
  const names = sink.specs().map((s) => s.name);
  const L = model.text.numLayers;
  const V = model.config.vision.num_hidden_layers;
  let packed: Tensor<'float32'> | undefined;
  if (sink.has('pixel_values') && sink.has('image_sizes')) {
    const hooks = ['vision.embed', PRE_LAYRNORM, ...Array.from({ length: V }, (_, l) => `vision.${l}.out`), 'vision.post_norm', 'projector.out'];
    const feats = await model.imageFeatures(sink.ref('pixel_values'), sink.ref('image_sizes'), hooks);
    packed = feats.packed;
    if (sink.has('vision.embeddings')) sink.compare('vision.embeddings', feats.taps.get('vision.embed')!, MODEL_TOL);
    for (const [i, name] of indexed(names, /^vision\.hidden_states\.(\d+)$/)) {
      const t = feats.taps.get(i === 0 ? PRE_LAYRNORM : `vision.${i - 1}.out`);
      if (t) sink.compare(name, t, MODEL_TOL);
    }
    if (sink.has('vision.pooler_output')) {
      const post = feats.taps.get('vision.post_norm')!; // [tile, token, d]
      const [T, N, D] = post.shape;
      const cls = new Float32Array(T * D);
      for (let t = 0; t < T; t++) cls.set(toF32(post).subarray(t * N * D, t * N * D + D), t * D);
      sink.compare('vision.pooler_output', f32([T, D], cls), MODEL_TOL, undefined, 'post_layernorm of the CLS token');
    }
    if (sink.has('projector.output')) sink.compare('projector.output', feats.taps.get('projector.out')!, MODEL_TOL);
    if (sink.has('image_features.packed')) sink.compare('image_features.packed', feats.packed, MODEL_TOL);
    if (sink.has('image_features.lengths')) sink.compare('image_features.lengths', i64([feats.lengths.length], feats.lengths), EXACT);
  }
  if (!sink.has('input_ids')) return sink;
  const ids = computedIds ?? idRows(sink.ref('input_ids'));
  const out = await model.lm.forward({ inputsEmbeds: model.embedWithImages(ids, packed), taps: decoderTapsFor(sink, '', L), logitsAt: 'all' });
  compareDecoder(sink, '', L, out, out.cache);
  let cache = out.cache;
  for (const k of decodeSteps(sink)) {
    const p = `decode${k}.`;
    sink.mark(`${p}input_ids`, 'input', 'the decode token');
    const d = await model.lm.forward({ inputIds: idRows(sink.ref(`${p}input_ids`)), past: cache, taps: decoderTapsFor(sink, p, L) });
    compareDecoder(sink, p, L, d, d.cache, `continues the kvlens cache (decode position = cache length)`);
    cache = d.cache;
  }
  return sink;
}
