// Parity of a Qwen2-VL / Qwen2.5-VL run. kvlens computes the M-RoPE ids (position_ids, rope_deltas, decode
// position_ids), the 2-D rotary angles, the window order and cu_seqlens itself and compares them exactly; the tower
// runs on the stored pixel_values (vision.patch_embed.output, vision.blocks.N.output in both orders,
// vision.merger.ln_q_output, vision.merger_output); decoder tensors and decode steps as in decoder-rows.ts;
// logits_with_1d_position_ids / logits_without_mrope_position_ids reproduce the negative control.
// pixel_values / image_grid_thw are recomputed from inputs/*.png with kvlens' Qwen2-VL processor.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Qwen2Vl } from '../../models/qwen2_vl/model.js';
import { imageGroups, toWindowOrder, visionRotary, windowIndex } from '../../models/qwen2_vl/positions.js';
import { loadImage } from '../../preprocess/image.js';
import { parseQwen2VLImageConfig, processQwen2VLImages } from '../../preprocess/qwen2vl-image.js';
import { f32, i64, toF32, type Tensor } from '../../tensor/tensor.js';
import { EXACT, MODEL_TOL, PIXEL_TOL, type Tolerance } from '../compare.js';
import { checkRawImages, indexed, RowSink, type FamilyContext } from './common.js';
import { markPreprocessing } from './preprocessing.js';
import { promptIds } from './prompt-ids.js';
import { compareDecoder, decodeSteps, decoderTapsFor, idRows } from './decoder-rows.js';

export const QWEN2_VL_MODEL_TYPES = ['qwen2_vl', 'qwen2_5_vl'];

/**
 * Vision residual streams can reach |x| ~ 1e2 (qwen2vl_tiny's patch embeddings): there float32 sums of C*T*P*P
 * products differ by a few 1e-4 between summation orders, so the absolute bound grows by 2e-6 x max|ref|.
 */
function visionTol(ref: Tensor): { tol: Tolerance; note?: string } {
  const m = toF32(ref).reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  if (m <= 1) return { tol: MODEL_TOL };
  return { tol: { kind: 'abs', max: 1e-4 + 2e-6 * m }, note: `bound 1e-4 + 2e-6 x max|ref| (${m.toFixed(1)})` };
}

async function checkProcessing(sink: RowSink): Promise<void> {
  const { fx, run, modelDir } = sink.ctx;
  const images = fx.runImages(run.name);
  const ppPath = join(modelDir, 'preprocessor_config.json');
  const targets = ['pixel_values', 'image_grid_thw'].filter((n) => sink.has(n));
  if (!targets.length) return;
  if (!images || !existsSync(ppPath)) { markPreprocessing(sink, targets); return; }
  try {
    const cfg = parseQwen2VLImageConfig(JSON.parse(readFileSync(ppPath, 'utf8')), ppPath);
    const out = processQwen2VLImages(await Promise.all(images.map((p) => loadImage(join(fx.root, p)))), cfg);
    if (sink.has('pixel_values')) sink.compare('pixel_values', out.pixelValues, PIXEL_TOL, undefined, `from ${images.join(', ')}`);
    if (sink.has('image_grid_thw')) sink.compare('image_grid_thw', out.imageGridThw, EXACT);
  } catch (e) {
    for (const n of targets) sink.mark(n, 'error', `kvlens processor: ${(e as Error).message}`);
  }
}

const i64of = (shape: number[], v: readonly number[]) => i64(shape, [...v]);

export async function qwen2VlParity(ctx: FamilyContext): Promise<RowSink> {
  const sink = new RowSink(ctx);
  await checkRawImages(sink);
  const model = await ctx.cache.get(`qwen2_vl:${ctx.modelDir}`, () => Qwen2Vl.load(ctx.modelDir, { device: ctx.device }), (m) => m.dispose());
  await checkProcessing(sink);
  const computedIds = await promptIds(sink);
  if (!sink.has('input_ids')) return sink;
  const names = sink.specs().map((s) => s.name);
  const spec = model.config.vision;
  const L = model.text.numLayers;
  const ids = computedIds ?? idRows(sink.ref('input_ids'));
  const gridT = sink.has('image_grid_thw') ? sink.ref('image_grid_thw') : undefined;
  const grids = gridT ? model.grids(gridT) : [];
  const B = ids.length, S = ids[0].length;

  const ri = model.ropeIndex(ids, gridT ?? []);
  if (sink.has('position_ids')) sink.compare('position_ids', i64of([3, B, S], ri.positions.flatMap((a) => a.flat())), EXACT, undefined, 'kvlens get_rope_index');
  if (sink.has('rope_deltas')) sink.compare('rope_deltas', i64of([B, 1], ri.ropeDeltas), EXACT);
  if (grids.length) {
    const n = grids.reduce((a, g) => a + g.t * g.h * g.w, 0);
    if (sink.has('vision.rot_pos_emb')) sink.compare('vision.rot_pos_emb', f32([n, spec.headDim / 2], visionRotary(grids, spec).angles), MODEL_TOL);
    const win = windowIndex(grids, spec);
    if (sink.has('vision.window_index')) sink.compare('vision.window_index', i64of([win.windowIndex.length], win.windowIndex), EXACT);
    if (sink.has('vision.cu_window_seqlens')) sink.compare('vision.cu_window_seqlens', i64of([win.cuWindowSeqlens.length], win.cuWindowSeqlens), EXACT);
    if (sink.has('vision.cu_seqlens')) {
      const cu = [0];
      for (const g of grids) for (let t = 0; t < g.t; t++) cu.push(cu[cu.length - 1] + g.h * g.w);
      sink.compare('vision.cu_seqlens', i64of([cu.length], cu), EXACT, undefined, `${imageGroups(grids).length} patches`);
    }
  }

  let packed: Tensor<'float32'> | undefined;
  if (sink.has('pixel_values') && gridT) {
    const hooks = model.visionHooks.filter((h) => h !== 'projector.out');
    const feats = await model.imageFeatures(sink.ref('pixel_values'), gridT, hooks);
    packed = feats.packed;
    const vcmp = (name: string, t: Tensor | undefined) => {
      if (!sink.has(name) || !t) return;
      const { tol, note } = visionTol(sink.ref(name));
      sink.compare(name, t, tol, undefined, note);
    };
    vcmp('vision.patch_embed.output', feats.taps.get('vision.embed'));
    const win = windowIndex(grids, spec);
    const unit = spec.mergeSize * spec.mergeSize;
    for (const [l, name] of indexed(names, /^vision\.blocks\.(\d+)\.output$/)) {
      const t = feats.taps.get(`vision.${l}.out`);
      vcmp(name, t);
      if (t) vcmp(`${name}_window_order`, f32(t.shape, toWindowOrder(toF32(t), spec.dim, win.windowIndex, unit)));
    }
    vcmp('vision.merger.ln_q_output', feats.taps.get('vision.post_norm'));
    if (sink.has('vision.merger_output')) sink.compare('vision.merger_output', packed, MODEL_TOL);
  }
  const out = await model.forward({ inputIds: ids, pixelValues: sink.has('pixel_values') ? sink.ref('pixel_values') : undefined, imageGridThw: gridT, taps: decoderTapsFor(sink, '', L), logitsAt: 'all' });
  compareDecoder(sink, '', L, out, out.cache, 'M-RoPE ids computed by kvlens');
  let cache = out.cache;
  for (const k of decodeSteps(sink)) {
    const p = `decode${k}.`;
    sink.mark(`${p}input_ids`, 'input', 'the decode token');
    const step = idRows(sink.ref(`${p}input_ids`));
    if (sink.has(`${p}position_ids`)) {
      const next = cache!.nextPositions;
      sink.compare(`${p}position_ids`, i64of([3, B, 1], [0, 1, 2].flatMap(() => next)), EXACT, undefined, 'cache length + rope_delta');
    }
    const d = await model.forward({ inputIds: step, past: cache, taps: decoderTapsFor(sink, p, L) });
    compareDecoder(sink, p, L, d, d.cache, 'continues the kvlens cache at cache length + rope_delta');
    cache = d.cache;
  }
  for (const control of names.filter((n) => /^logits_(with_1d|without_mrope)_position_ids$/.test(n))) {
    const flat = ids.map((r) => r.map((_, i) => i));
    const o = await model.forward({ inputIds: ids, pixelValues: sink.has('pixel_values') ? sink.ref('pixel_values') : undefined, imageGridThw: gridT, mropePositionIds: [flat, flat, flat], logitsAt: 'all' });
    sink.compare(control, o.logits!, MODEL_TOL, undefined, 'negative control: 1-D positions on all three axes');
  }
  return sink;
}
