// What `kvlens run` feeds the picture writers (issue 16): the sampled prompts for text->image attention (flow: the
// pictured images with the store's own extraction prompt; blocking: the first questions of each benchmark, round
// robin; underutil: the first BLINK questions), question totals for progress lines, and the key-variance maps.
import { iterateDataset, type BlinkSample } from '../data/index.js';
import { lmmsEvalFormat } from '../eval/prompts.js';
import { blinkItem, toEvalItems, type EvalItem } from '../eval/tasks.js';
import { loadImage } from '../preprocess/image.js';
import { resizeRgb } from '../preprocess/pil-resize.js';
import type { KeyVariance } from '../results/schema.js';
import { FeatureStore } from '../store/index.js';
import type { AttentionRequest } from './attention-pictures.js';
import { benchmarkSamples } from './blocking.js';
import type { BenchmarkSpec, UnderutilConfig } from './config.js';
import { addSamples, panelsPng, ramp } from './pictures.js';

/** Flow: each pictured store image with the prompt the store was extracted with (and its resize, when there was one). */
export async function flowAttentionRequests(store: string, ids: readonly string[], view: string, resolution?: number): Promise<AttentionRequest[]> {
  const s = FeatureStore.open(store);
  try {
    const text = s.identity.prompt.template;
    const out: AttentionRequest[] = [];
    for (const id of ids) {
      const src = s.image(id).source;
      if (!src) continue;
      const img = resolution ? resizeRgb(await loadImage(src), resolution, resolution, 'bicubic') : src;
      out.push({ imageId: id, images: [img], text, view });
    }
    return out;
  } finally {
    s.close();
  }
}

const request = (item: EvalItem, family: string, prefix = ''): AttentionRequest => {
  const r = lmmsEvalFormat(family).render(item.context, item.images.length);
  return { imageId: `${prefix}${item.benchmark}/${item.id}`, images: item.images, text: r.prefix + r.suffix };
};

/** Blocking: `n` questions, the first ones of each benchmark in turn. */
export async function benchmarkAttentionRequests(specs: readonly BenchmarkSpec[], family: string, n: number): Promise<AttentionRequest[]> {
  const per = specs.map(() => [] as EvalItem[]);
  const want = specs.map((_, i) => Math.floor(n / specs.length) + (i < n % specs.length ? 1 : 0));
  for (let i = 0; i < specs.length; i++) {
    if (want[i] === 0) continue;
    for await (const item of toEvalItems(benchmarkSamples(specs[i]))) {
      per[i].push(item);
      if (per[i].length >= want[i]) break;
    }
  }
  return per.flat().map((item) => request(item, family));
}

/** Under-utilisation: the first `n` questions of its subtasks (attention to the reference image, the first). */
export async function underutilAttentionRequests(cfg: Pick<UnderutilConfig, 'data' | 'limit'>, subtasks: readonly string[], family: string, n: number): Promise<AttentionRequest[]> {
  const out: AttentionRequest[] = [];
  for (const sub of subtasks) {
    for await (const s of iterateDataset('blink', cfg.data, { split: 'val', subset: sub, limit: cfg.limit }) as AsyncGenerator<BlinkSample>) {
      if (out.length >= n) return out;
      out.push(request(blinkItem(s), family, 'underutil/'));
    }
  }
  return out;
}

/** Questions per benchmark (for count/total/ETA progress lines); a cheap pass over the question files. */
export async function benchmarkTotals(specs: readonly BenchmarkSpec[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const spec of specs) {
    let n = 0;
    for await (const _ of benchmarkSamples(spec)) n++;
    out[spec.name] = n;
  }
  return out;
}

/** BLINK questions of the under-utilisation subtasks. */
export async function underutilTotal(cfg: Pick<UnderutilConfig, 'data' | 'limit'>, subtasks: readonly string[]): Promise<number> {
  let n = 0;
  for (const sub of subtasks) for await (const _ of iterateDataset('blink', cfg.data, { split: 'val', subset: sub, limit: cfg.limit })) n++;
  return n;
}

/** Layers drawn: the blocked ones (up to `max`, the last ones), else evenly spaced. */
export function keysPictureLayers(kv: KeyVariance, max = 4): number[] {
  const all = kv.layers.map((l) => l.layer);
  const blocked = all.filter((l) => kv.blockedLayers.includes(l));
  if (blocked.length) return blocked.slice(-max);
  if (all.length <= max) return all;
  return [...new Set(Array.from({ length: max }, (_, i) => all[Math.round((i * (all.length - 1)) / (max - 1))]))];
}

/** One PNG per drawn layer: the variance per grid position (ramp, min..max of the layer), input-agnostic ones boxed red. */
export async function keysPictures(runDir: string, kv: KeyVariance, max = 4): Promise<string[]> {
  const { rows, cols } = kv.grid;
  const cell = Math.max(4, Math.floor(256 / Math.max(rows, cols)));
  const pictures = [];
  for (const layer of keysPictureLayers(kv, max)) {
    const l = kv.layers.find((x) => x.layer === layer)!;
    const lo = Math.min(...l.variance);
    const hi = Math.max(...l.variance);
    const flagged = new Set(l.inputAgnostic);
    const width = cols * cell;
    const height = rows * cell;
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const r = Math.floor(y / cell);
        const c = Math.floor(x / cell);
        const p = r * cols + c;
        const edge = x % cell === 0 || y % cell === 0 || x % cell === cell - 1 || y % cell === cell - 1;
        const rgb = flagged.has(p) && edge ? [225, 30, 40] : ramp((l.variance[p] - lo) / (hi - lo || 1));
        data.set(rgb, (y * width + x) * 3);
      }
    }
    pictures.push({
      png: await panelsPng([{ width, height, data }]),
      entry: {
        file: `keys-variance-layer${layer}.png`, kind: 'other' as const, task: 'keys',
        title: `key variance, layer ${layer}`,
        caption: `cross-image variance (${kv.statistic}) of the cached key per ${kv.view ?? 'base'} grid position (${rows}×${cols}), ${kv.nImages} images; dark = low (${lo.toPrecision(4)}), yellow = high (${hi.toPrecision(4)}); red boxes: ${l.inputAgnostic.length} position(s) below τ = ${kv.threshold.value.toPrecision(4)} (input-agnostic).`,
      },
    });
  }
  await addSamples(runDir, pictures);
  return pictures.map((p) => p.entry.file);
}
