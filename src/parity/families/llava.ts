// Parity of a LLaVA-OneVision run, computed in ONE model forward (image path + language model) plus decode steps.
//   kvlens inputs: input_ids / attention_mask from the prompt text (notes.prompts) and the raw images
//   (notes.run_images) through kvlens' processor (tokenizer + <image> expansion), compared exactly; pixel_values
//   recomputed and compared; image_sizes from kvlens' processor. The model is fed the STORED pixel_values (by
//   design: a preprocessing difference never hides or causes a model difference), kvlens' ids and sizes, and the
//   run's masks.
//   vision.hidden_states.N -> vision.embed / vision.{N-1}.out;  vision.last_hidden_state_post_layernorm -> vision.post_norm
//   projector.output -> projector.out;  image_features.packed -> image.packed;  image_features.lengths -> image tokens
//   LM tensors and decodeN.* -> src/parity/families/decoder.ts

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { LlavaOnevision } from '../../models/llava_onevision/model.js';
import { loadImage } from '../../preprocess/image.js';
import { parseAnyresImageConfig, processAnyresImages } from '../../preprocess/llava-onevision-image.js';
import { LlavaOnevisionProcessor, type Prepared } from '../../preprocess/processor.js';
import { i64, tensor, type Tensor } from '../../tensor/tensor.js';
import { KvlensInputError } from '../../util/errors.js';
import { EXACT, MODEL_TOL, PIXEL_TOL } from '../compare.js';
import { checkRawImages, indexed, RowSink, type FamilyContext } from './common.js';
import { compareLmStep, lmTargets, maskInputs, runDecodeSteps, tapsOf } from './decoder.js';
import { storedPixelValues } from './preprocessing.js';

export const LLAVA_MODEL_TYPES = ['llava_onevision'];

const FROM_FIXTURE = 'read from the fixture: the run records no prompt text (notes.prompts) for kvlens to tokenize';

function rowsOf(t: Tensor): number[][] {
  const [B, S] = t.shape;
  const v = Array.from(t.data as ArrayLike<number | bigint>, Number);
  return Array.from({ length: B }, (_, b) => v.slice(b * S, (b + 1) * S));
}

interface KvlensInputs {
  /** Token ids the model is fed, [batch][pos]. */
  readonly ids?: number[][];
  /** (height, width) per image the model is fed. */
  readonly imageSizes?: Tensor;
}

/** input_ids, attention_mask, pixel_values, image_sizes computed by kvlens and compared with the run's. */
async function kvlensInputs(sink: RowSink, model: LlavaOnevision): Promise<KvlensInputs> {
  const { fx, run, modelDir, cache } = sink.ctx;
  const images = fx.runImages(run.name);
  const paths = images?.map((p) => join(fx.root, p));
  const prompt = fx.prompt(run.name);
  let processor: LlavaOnevisionProcessor | undefined;
  let why = FROM_FIXTURE;
  if (prompt !== undefined) {
    try {
      processor = await cache.get(`processor:${modelDir}`, () => LlavaOnevisionProcessor.fromPretrained(modelDir), async () => {});
    } catch (e) {
      if (!(e instanceof KvlensInputError)) throw e;
      why = `read from the fixture: kvlens cannot build the processor (${e.message})`;
    }
  }
  let out: Prepared | undefined;
  if (processor) {
    try {
      out = await processor.prepare({ images: paths ?? [], text: prompt });
    } catch (e) {
      if (!(e instanceof KvlensInputError)) throw e;
      why = `read from the fixture: kvlens cannot prepare the prompt (${e.message})`;
    }
  }
  if (out) {
    const ids = rowsOf(out.inputIds);
    if (sink.has('input_ids')) sink.compare('input_ids', out.inputIds, EXACT, undefined, 'notes.prompts through the kvlens tokenizer and <image> expansion');
    if (sink.has('attention_mask')) sink.compare('attention_mask', tensor('int64', out.inputIds.shape, new BigInt64Array(ids[0].length).fill(1n)), EXACT);
    if (out.pixelValues && sink.has('pixel_values')) sink.compare('pixel_values', out.pixelValues, PIXEL_TOL, undefined, `from ${images!.join(', ')}`);
    if (out.imageSizes && sink.has('image_sizes')) sink.compare('image_sizes', out.imageSizes, EXACT);
    return { ids, imageSizes: out.imageSizes };
  }
  for (const n of ['input_ids', 'attention_mask']) if (sink.has(n)) sink.mark(n, 'from-fixture', why);
  let imageSizes: Tensor | undefined;
  const ppPath = join(modelDir, 'preprocessor_config.json');
  if (paths && existsSync(ppPath)) {
    const cfg = parseAnyresImageConfig(JSON.parse(readFileSync(ppPath, 'utf8')), ppPath);
    const decoded = await Promise.all(paths.map((p) => loadImage(p)));
    const out = processAnyresImages(decoded, cfg, { patchSize: model.config.vision.patch_size, maxTiles: model.config.anyresMaxTiles });
    if (sink.has('pixel_values')) sink.compare('pixel_values', out.pixelValues, PIXEL_TOL, undefined, `from ${images!.join(', ')}`);
    if (sink.has('image_sizes')) sink.compare('image_sizes', out.imageSizes, EXACT);
    imageSizes = out.imageSizes;
  } else {
    for (const n of ['pixel_values', 'image_sizes']) if (sink.has(n)) sink.mark(n, 'from-fixture', !images ? 'notes.run_images does not list this run\'s images' : 'the model has no preprocessor_config.json');
  }
  return { ids: sink.has('input_ids') ? rowsOf(sink.ref('input_ids')) : undefined, imageSizes };
}

/** Image sizes of a run when kvlens could not compute them: its own, or those of the run its pixel_values come from. */
function storedImageSizes(sink: RowSink, pvFrom: string | undefined): Tensor | undefined {
  if (sink.has('image_sizes')) return sink.ref('image_sizes');
  if (!pvFrom || pvFrom === sink.ctx.run.name) return undefined;
  const donor = sink.ctx.fx.run(pvFrom);
  return sink.ctx.fx.has(donor, 'image_sizes') ? sink.ctx.fx.read(donor, 'image_sizes') : undefined;
}

export async function llavaParity(ctx: FamilyContext): Promise<RowSink> {
  const sink = new RowSink(ctx);
  await checkRawImages(sink);
  const model = await ctx.cache.get(`model:${ctx.modelDir}`, () => LlavaOnevision.load(ctx.modelDir, { device: ctx.device }), (m) => m.dispose());
  const inputs = await kvlensInputs(sink, model);
  if (!inputs.ids) return sink; // nothing to run the model on: the remaining tensors are reported as not computable
  const names = sink.specs().map((s) => s.name);

  const pv = storedPixelValues(sink);
  const sizes = inputs.imageSizes ?? storedImageSizes(sink, pv?.from);
  const visionTargets = new Map<string, string>();
  for (const [i, name] of indexed(names, /^vision\.hidden_states\.(\d+)$/)) visionTargets.set(name, i === 0 ? 'vision.embed' : `vision.${i - 1}.out`);
  if (sink.has('vision.last_hidden_state_post_layernorm')) visionTargets.set('vision.last_hidden_state_post_layernorm', 'vision.post_norm');
  if (sink.has('projector.output')) visionTargets.set('projector.output', 'projector.out');
  if (sink.has('image_features.packed')) visionTargets.set('image_features.packed', 'image.packed');
  for (const [name, hook] of visionTargets) {
    if (hook !== 'image.packed' && !model.visionHooks.includes(hook)) { sink.mark(name, 'error', `the vision tower has no ${hook}`); visionTargets.delete(name); }
  }
  const lm = lmTargets(names, '', model.dims.lmLayers);
  const withImages = pv && sizes;
  const result = await model.forward({
    inputIds: inputs.ids,
    ...(withImages ? { pixelValues: pv.tensor, imageSizes: sizes } : {}),
    ...maskInputs(sink),
    taps: [...(withImages ? visionTargets.values() : []), ...tapsOf(lm)],
    logitsAt: 'all',
  });
  const borrowed = pv && pv.from !== ctx.run.name ? `pixel_values of run ${pv.from}` : undefined;
  if (withImages) {
    for (const [name, hook] of visionTargets) sink.compare(name, result.taps.get(hook)!, MODEL_TOL, undefined, borrowed);
    if (sink.has('image_features.lengths')) sink.compare('image_features.lengths', i64([result.imageTokens!.length], [...result.imageTokens!]), EXACT);
  }
  compareLmStep(sink, lm, result, undefined, borrowed);
  await runDecodeSteps(sink, model, result);
  return sink;
}
