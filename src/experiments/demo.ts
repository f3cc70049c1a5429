// `kvlens demo`: the README's main job end to end on the embedded default model, offline, in a few minutes on 2 cores.
//
//   <out>/model/                  the tiny seeded LLaVA-OneVision checkpoint (HF layout)
//   <out>/data/{pascal5i,spair}/  synthetic datasets in their real on-disk layouts (seeded)
//   <out>/stores/{pascal5i,spair} feature stores: values + keys of every LM layer, projector output, packed image features
//   <out>/run/                    the run directory (src/results): manifest.json, results/probes.{json,csv}, store -> ../stores/pascal5i
//   <out>/run/report/report.html  the HTML report (src/report) with the layer curves
//
// Each run replaces <out>/data, <out>/stores and <out>/run. Everything is a function of the seed (model weights come from the embedded spec's own seed), so two demos with the
// same seed give the same probe rows.
import { existsSync, rmSync, symlinkSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { generateSynthetic } from '../data/synthetic/index.js';
import { extractFeatures } from '../extract/extract.js';
import { TINY_MODELS } from '../models/synthetic/index.js';
import { buildReport, type ReportSummary } from '../report/build.js';
import { RUN_FILES, writeRun } from '../results/rundir.js';
import type { Manifest } from '../results/schema.js';
import { modelConfigSha256, kvlensVersion, FeatureStore } from '../store/index.js';
import type { ResultRow } from '../probes/results.js';
import { runProbeFlow } from './flow.js';
import { writeSegPictures } from './flow-pictures.js';
import { summariseCurves } from './stores.js';
import { ProbeTaskSchema } from './config.js';
import { ensureDir } from '../util/dirs.js';

export const DEMO_MODEL_NAME = TINY_MODELS.llava_onevision.name;
/** Taps probed in the demo: every layer's values and keys, plus the packed projector output as the encoder reference. */
export const DEMO_TAPS = ['lm.*.attn.v', 'lm.*.attn.k', 'image.packed'];
/**
 * The tiny model's base tile is 56 px = a 4 x 4 token grid: too coarse for the synthetic objects (a few % of the image),
 * so every probe would sit at its floor. The anyres high-resolution view (up to 3 x 3 tiles, ~8-12 tokens a side) is
 * what the demo probes; projector.out exists for the base tile only, so the packed features stand in for it.
 */
export const DEMO_VIEW = 'highres';

/** The embedded tiny model of each family the demo runs on (seeded random weights; src/models/synthetic). */
export const DEMO_FAMILIES = {
  llava_onevision: TINY_MODELS.llava_onevision, llava_next: TINY_MODELS.llava_next, qwen2_5_vl: TINY_MODELS.qwen2_5_vl,
} as const;
export type DemoFamily = keyof typeof DEMO_FAMILIES;

export interface DemoOptions {
  readonly out: string;
  /** Which tiny model (default llava_onevision). The same experiment runs on each; Qwen2.5-VL's one grid is stored as "highres". */
  readonly family?: DemoFamily;
  readonly seed?: number;
  /** Synthetic Pascal-5i images (default 24). */
  readonly segImages?: number;
  /** Synthetic SPair pairs (default 10, i.e. 20 images). */
  readonly pairs?: number;
  readonly threads?: number;
  readonly onProgress?: (message: string) => void;
}

export interface DemoSummary {
  readonly runDir: string;
  readonly report: ReportSummary;
  readonly rows: ResultRow[];
  readonly timings: Record<string, number>;
}

/** sha256 over a dataset's file list + bytes would be slow for big sets; the demo's are tiny, so hash what defines them. */
function datasetHash(name: string, seed: number, n: number): string {
  return createHash('sha256').update(`synthetic:${name}:seed=${seed}:n=${n}`).digest('hex');
}

/** <run>/store -> the segmentation store (relative link), so `kvlens view <run>` finds features for the masks. */
function linkStore(runDir: string, store: string): void {
  const link = join(runDir, RUN_FILES.store);
  if (!existsSync(link)) symlinkSync(relative(runDir, store), link, 'dir');
}

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const out = resolve(opts.out);
  const seed = opts.seed ?? 0;
  const segImages = opts.segImages ?? 24;
  const pairs = opts.pairs ?? 10;
  const say = opts.onProgress ?? (() => undefined);
  const timings: Record<string, number> = {};
  const timed = async <T>(step: string, f: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      timings[step] = (timings[step] ?? 0) + (performance.now() - t0) / 1000;
    }
  };
  ensureDir(out);
  // Start fresh: a store resumed over data regenerated with another seed would keep stale features under the same ids.
  for (const sub of ['data', 'stores', 'run']) rmSync(join(out, sub), { recursive: true, force: true });

  const family = DEMO_FAMILIES[opts.family ?? 'llava_onevision'];
  const modelDir = join(out, 'model');
  rmSync(modelDir, { recursive: true, force: true }); // another family's files must not linger
  say(`writing the tiny ${family.label} checkpoint to ${modelDir}`);
  await timed('model', () => family.write(modelDir));

  const data = { pascal5i: join(out, 'data', 'pascal5i'), spair: join(out, 'data', 'spair') };
  say('generating synthetic Pascal-5i and SPair sets');
  await timed('data', async () => {
    await generateSynthetic('pascal5i', data.pascal5i, { seed, n: segImages });
    await generateSynthetic('spair', data.spair, { seed, n: pairs });
  });

  const stores = { pascal5i: join(out, 'stores', 'pascal5i'), spair: join(out, 'stores', 'spair') };
  const extraction = { model: modelDir, taps: ['values', 'keys', 'image.packed'], layers: '*', views: ['base' as const, 'highres' as const], dtype: 'float32' as const };
  for (const [name, images] of [['pascal5i', join(data.pascal5i, 'VOC2012', 'JPEGImages')], ['spair', join(data.spair, 'JPEGImages')]] as const) {
    say(`extracting values and keys of every layer for ${name}`);
    await timed('extract', () => extractFeatures({ ...extraction, images, out: stores[name] }));
  }

  say('probing every layer');
  const common = { taps: DEMO_TAPS, layers: 'all', model: family.name, seed, view: DEMO_VIEW, threads: opts.threads };
  const seg = await timed('probe', () => runProbeFlow({ ...common, task: 'fewshot-seg', store: stores.pascal5i, data: data.pascal5i, fold: 'pooled', shots: 1, episodes: 'per-entry' }));
  const corr = await timed('probe', () => runProbeFlow({ ...common, task: 'correspondence', store: stores.spair, data: data.spair, alphas: [0.1, 0.2] }));
  // Per-class IoUs stay in the table only as their mean (mIoU): the demo's classes hold one or two images each.
  const rows = [...seg.rows.filter((r) => !r.metric.startsWith('IoU.class')), ...corr.rows.filter((r) => !/^PCK@[\d.]+\.image\./.test(r.metric))];

  const runDir = join(out, 'run');
  const store = FeatureStore.open(stores.pascal5i);
  const prompt = store.identity.prompt.template;
  store.close();
  const manifest: Manifest = {
    experiment: `demo: layer-wise few-shot segmentation and correspondence on the embedded tiny ${family.label}`,
    kvlensVersion: kvlensVersion(),
    createdAt: new Date().toISOString(),
    models: [{ id: family.name, revision: `embedded seed ${family.seed}`, configHash: modelConfigSha256(modelDir), lmLayers: family.lmLayers, visionLayers: family.visionLayers }],
    datasets: [
      { name: 'pascal5i', split: 'all folds, val+trn (synthetic)', path: data.pascal5i, hash: datasetHash('pascal5i', seed, segImages), count: segImages },
      { name: 'spair', split: 'test (synthetic)', path: data.spair, hash: datasetHash('spair', seed, pairs), count: pairs },
    ],
    prompts: { extraction: prompt },
    seeds: [seed],
    dtype: 'float32',
    device: 'cpu',
    timings: { ...timings },
    notes: `view: ${DEMO_VIEW}; fewshot: 1-shot, episodes = every (image, class) entry of a class with >= 2 images; correspondence: PCK@0.1 and @0.2. Stores: ${stores.pascal5i}, ${stores.spair}.`,
  };
  await writeRun.probes(runDir, rows, { fewshot: seg.protocol, correspondence: corr.protocol });
  await writeRun.manifest(runDir, manifest);
  linkStore(runDir, stores.pascal5i);
  say('probe masks for 4 images');
  const peak = summariseCurves(seg.rows).find((c) => c.metric === 'mIoU' && c.family === 'lm.{L}.attn.v')?.peakLayer;
  await timed('pictures', () => writeSegPictures({
    runDir, store: stores.pascal5i, task: ProbeTaskSchema.parse({ task: 'fewshot-seg', data: data.pascal5i, fold: 'pooled', shots: 1, episodes: 'per-entry' }),
    family: 'lm.{L}.attn.v', view: DEMO_VIEW, seed, images: 4, sampleLayer: peak, key: 'fewshot-seg',
  }));
  say('building the report');
  const report = await timed('report', () => buildReport(runDir, { out: join(runDir, 'report', 'report.html') }));
  await writeRun.manifest(runDir, { ...manifest, timings: { ...timings } }); // again, now with the report's timing
  return { runDir, report, rows, timings };
}
