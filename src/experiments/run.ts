// `kvlens run <experiment.yaml>`: one of the paper's experiments end to end from one validated config, into a run
// directory (src/results) with a manifest that says exactly what produced the numbers.
//
//   flow       extract values/keys of every LM layer (+ projector output, + un-finetuned SigLIP) -> the layer-wise
//              probes -> results/probes.{json,csv}, with the curve summary (peak layer/value, drop at the last layer)
//   keys       live key variance over N images at a fixed resolution -> results/key_variance.json
//   blocking   POPE / MME / BLINK unblocked, blocking the input-agnostic keys, blocking as many random keys
//              -> results/benchmarks.json + results/outputs/<benchmark>.jsonl (+ key_variance.json)
//   prefix     the probes with no / correct / random / incorrect prefix -> results/prefix.json
//   underutil  BLINK image-comparison questions from the values alone vs the MLM -> results/underutil.json
//
// Every run also writes <run>/experiment.yaml (the file as given) and <run>/manifest.json (written last).

import { createHash } from 'node:crypto';
import { existsSync, symlinkSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { listImages, parseDatasetSpec } from '../extract/sources.js';
import { loadVisionModel } from '../models/index.js';
import type { VisionLanguageModelApi } from '../models/types.js';
import { loadProcessor } from '../preprocess/load.js';
import { writeFileAtomic } from '../results/io.js';
import { RUN_FILES, writeRun } from '../results/rundir.js';
import type { KeyVariance, Manifest } from '../results/schema.js';
import { renderPrompt } from '../tokenizer/prompt.js';
import { reportProgress } from '../util/progress.js';
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { readKeyVariance, runBlockingBenchmarks } from './blocking.js';
import { loadExperimentFile, parseExperimentConfig, type BlockingConfig, type ExperimentConfig, type FlowConfig, type KeysExperimentConfig, type LoadedExperiment, type PrefixConfig, type UnderutilConfig } from './config.js';
import { runKeyVariance } from './keys/index.js';
import { modelFamily, resolveView } from './model.js';
import { fullPrompt, lmmsEvalFormat, mmeContext, popeContext } from '../eval/prompts.js';
import { buildManifest, datasetEntry, Timings, type DatasetEntry } from './manifest.js';
import { PREFIX_CONDITIONS, runPrefix } from './prefix.js';
import { extractStore, probeStore, summariseCurves, taskDataset, taskImages } from './stores.js';
import { runUnderutil, underutilSubtasks, underutilRate } from './underutil.js';
import { encoderRows } from './encoder-rows.js';
import { writeSegPictures } from './flow-pictures.js';
import { writeAttentionPictures } from './attention-pictures.js';
import { benchmarkAttentionRequests, benchmarkTotals, flowAttentionRequests, keysPictures, underutilAttentionRequests, underutilTotal } from './run-pictures.js';
import { ensureDir } from '../util/dirs.js';

export interface RunHooks {
  readonly onProgress?: (message: string) => void;
}

export interface RunSummary {
  readonly runDir: string;
  readonly experiment: ExperimentConfig['experiment'];
  readonly manifest: Manifest;
  /** Paths written under the run dir (relative). */
  readonly files: string[];
  /** Images skipped under onError: skip ("id: error"); `kvlens run` exits 1 when there are any. */
  readonly skipped: string[];
}

/** What each experiment contributes to the manifest. */
export interface Outcome {
  readonly datasets: DatasetEntry[];
  readonly prompts: Record<string, string>;
  readonly files: string[];
  readonly notes: string[];
  readonly skipped?: string[];
}

/** Run an experiment file (or an already validated config). */
export async function runExperiment(input: string | LoadedExperiment | ExperimentConfig, hooks: RunHooks = {}): Promise<RunSummary> {
  const loaded: LoadedExperiment | undefined = typeof input === 'string' ? loadExperimentFile(input) : 'config' in input ? input : undefined;
  const cfg = loaded ? loaded.config : parseExperimentConfig(input);
  const say = hooks.onProgress ?? (() => undefined);
  const timings = new Timings();
  const modelName = cfg.modelName ?? basename(cfg.model);
  ensureDir(cfg.out);
  if (loaded) await writeFileAtomic(join(cfg.out, 'experiment.yaml'), loaded.text);

  const outcome = await runExperimentResults(cfg, modelName, timings, say);
  const manifest = buildManifest({
    experiment: cfg.name ?? `${cfg.experiment}${loaded ? `: ${basename(loaded.file)}` : ''}`,
    modelDir: cfg.model, modelName, datasets: outcome.datasets, prompts: outcome.prompts, seeds: [cfg.seed],
    dtype: cfg.experiment === 'flow' || cfg.experiment === 'prefix' ? `${cfg.dtype} (stored features); model float32` : 'float32',
    device: cfg.device, timings,
    config: { file: loaded?.file, sha256: loaded?.sha256 ?? createHash('sha256').update(JSON.stringify(cfg)).digest('hex'), resolved: cfg as unknown as Record<string, unknown> },
    notes: outcome.notes.join(' '),
  });
  await writeRun.manifest(cfg.out, manifest);
  return { runDir: cfg.out, experiment: cfg.experiment, manifest, files: [...(loaded ? ['experiment.yaml'] : []), ...outcome.files, RUN_FILES.manifest], skipped: outcome.skipped ?? [] };
}

/**
 * One validated experiment's results into cfg.out (results/...), without the manifest: runExperiment writes it for
 * one experiment, the demo suite (suite.ts) gathers several experiments' outcomes into one run directory.
 */
export async function runExperimentResults(cfg: ExperimentConfig, modelName: string, timings: Timings, say: (m: string) => void): Promise<Outcome> {
  switch (cfg.experiment) {
    case 'flow': return runFlow(cfg, modelName, timings, say);
    case 'keys': return runKeys(cfg, modelName, timings, say);
    case 'blocking': return runBlocking(cfg, modelName, timings, say);
    case 'prefix': return runPrefixExperiment(cfg, modelName, timings, say);
    case 'underutil': return runUnderutilExperiment(cfg, modelName, timings, say);
  }
}

// ---- flow ----

async function runFlow(cfg: FlowConfig, modelName: string, timings: Timings, say: (m: string) => void): Promise<Outcome> {
  const storesDir = cfg.stores ?? join(cfg.out, 'stores');
  const view = resolveView(cfg.model, cfg.view);
  const rows = [];
  const protocol: Record<string, unknown> = {};
  const prompts: Record<string, string> = {};
  const datasets: DatasetEntry[] = [];
  const notes: string[] = [];
  const skipped: string[] = [];
  const names = new Set<string>();
  let firstStore: string | undefined;
  const pictured: string[] = [];
  const encoder = await encoderRows(cfg.model, cfg.encoderBaseline ?? cfg.siglip, cfg.encoderRows);
  if (encoder) protocol.encoderBaseline = { dir: encoder.dir, taps: encoder.taps, rule: encoder.note };
  for (const t of cfg.tasks) {
    let key: string = t.task;
    for (let i = 2; names.has(key); i++) key = `${t.task}-${i}`;
    names.add(key);
    const images = await timings.time('list', () => taskImages(t));
    const spec = { model: cfg.model, out: join(storesDir, key), lmTaps: cfg.lmTaps, layers: cfg.layers, view, projector: cfg.projector, encoder, dtype: cfg.dtype, device: cfg.device, resolution: cfg.resolution, onError: cfg.onError };
    say(`${key}: extracting ${cfg.lmTaps.join(' + ')} of layers ${cfg.layers}${cfg.projector ? ' + projector.out' : ''}${encoder ? ` + ${encoder.taps.join(' + ')}` : ''} for ${images.length} images`);
    const ex = await timings.time('extract', () => extractStore(spec, images));
    if (ex.skipped.length) {
      skipped.push(...ex.skipped.map((s) => `${key}: ${s}`));
      notes.push(`${key}: ${ex.skipped.length} image(s) skipped (onError: skip): ${ex.skipped.slice(0, 3).join('; ')}${ex.skipped.length > 3 ? '; ...' : ''}.`);
    }
    firstStore ??= ex.store;
    prompts.extraction = ex.prompt;
    say(`${key}: probing every layer`);
    const probed = await timings.time('probe', () => probeStore(t, ex.store, spec, { model: modelName, seed: cfg.seed, threads: cfg.threads }));
    rows.push(...probed.rows);
    protocol[key] = probed.protocol;
    if (probed.missing.length) notes.push(`${key}: ${probed.missing.length} dataset images were not in the store.`);
    if (t.task === 'fewshot-seg' && cfg.pictures.images > 0 && ex.store === firstStore) {
      // Masks for the store the run links (<run>/store), so the viewer finds every pictured image's photo and grid.
      const family = `lm.{L}.${cfg.lmTaps[0] === 'keys' ? 'attn.k' : 'attn.v'}`;
      const peak = summariseCurves(probed.rows).find((c) => c.metric === 'mIoU' && c.family === family)?.peakLayer;
      say(`${key}: probe masks for ${cfg.pictures.images} image(s)`);
      const pics = await timings.time('pictures', () => writeSegPictures({ runDir: cfg.out, store: ex.store, task: t, family, view, seed: cfg.seed, images: cfg.pictures.images, sampleLayer: peak, key }));
      notes.push(...pics.notes);
      pictured.push(...pics.files.map((f) => f.imageId));
    }
    datasets.push(await timings.time('hash', () => datasetEntry(taskDataset(t), t.data, cfg.hashData, { count: images.length, split: describeSplit(t) })));
  }
  const curves = summariseCurves(rows);
  await writeRun.probes(cfg.out, rows, { ...protocol, curves });
  if (firstStore) linkStore(cfg.out, firstStore);
  if (firstStore && pictured.length) {
    say(`text -> image attention for ${pictured.length} pictured image(s)`);
    const requests = await flowAttentionRequests(firstStore, pictured, view, cfg.resolution);
    const att = await withModel(cfg, timings, (model) => timings.time('pictures', () => writeAttentionPictures(model, cfg.out, requests, 'flow (extraction prompt)')));
    notes.push(...att.notes, ...(att.written.length ? [`Text -> image attention (extraction prompt, every layer, heads averaged) for ${att.written.length} image(s) in attention/.`] : []));
  }
  if (encoder) notes.push(`Reference encoder: the un-finetuned tower at ${encoder.dir}; ${encoder.note}.`);
  notes.push(`view: ${view}; curve summary (peak layer, peak value, drop at the last layer) in results/probes.json protocol.curves.`);
  return { datasets, prompts, files: [RUN_FILES.probesJson, RUN_FILES.probesCsv], notes, skipped };
}

function describeSplit(t: FlowConfig['tasks'][number]): string {
  if (t.task === 'fewshot-seg') return t.fold === 'all' ? 'all folds, val+trn' : `fold ${t.fold}, ${t.split ?? 'val'}`;
  if (t.task === 'correspondence') return t.split ?? 'test';
  return t.subset ?? 'all groups';
}

/** <run>/store -> a store (relative link), so `kvlens view <run>` finds features. */
function linkStore(runDir: string, store: string): void {
  const link = join(runDir, RUN_FILES.store);
  if (!existsSync(link)) symlinkSync(relative(runDir, store), link, 'dir');
}

// ---- keys ----

type KeysFields = Omit<KeysExperimentConfig, 'experiment' | 'name' | 'model' | 'modelName' | 'out' | 'seed' | 'device' | 'dtype' | 'threads' | 'hashData' | 'onError' | 'pictures'>;

/**
 * The prompt a keys run forwards its images in: 'benchmark' = the model family's lmms-eval rendering (the one
 * evaluateBenchmark uses for the blocking benchmarks) of the POPE / MME task context with `question`; 'extraction' =
 * the extraction default (undefined: the extractor renders it).
 */
export function keysPrompt(model: string, k: Pick<KeysFields, 'prompt' | 'promptBenchmark' | 'question'>): string | undefined {
  if (k.prompt !== 'benchmark') return undefined;
  const context = k.promptBenchmark === 'mme' ? mmeContext(k.question) : popeContext(k.question);
  return fullPrompt(lmmsEvalFormat(modelFamily(model)).render(context, 1));
}

async function computeKeys(
  k: KeysFields, common: { model: string; out: string; seed: number; device: KeysExperimentConfig['device']; hashData: 'content' | 'listing'; pictures: KeysExperimentConfig['pictures'] }, modelName: string, timings: Timings, say: (m: string) => void,
  allViews = k.allViews,
): Promise<{ kv: KeyVariance; dataset: DatasetEntry; prompt: string; notes: string[] }> {
  const view = resolveView(common.model, k.view, 'keys.view');
  const text = keysPrompt(common.model, k);
  const native = k.resolution === 'native';
  if (native && view !== 'base') {
    throw new KvlensUsageError(`keys.resolution "native": the analysed view is "${view}" (this model has no base view; Qwen2-VL gives each image its own native grid), ` +
      'so there is no fixed grid to compute the variance on; give keys.resolution a number (e.g. 384)');
  }
  say(`key variance over up to ${k.n} images at ${native ? 'native resolution' : `${k.resolution} px`} (${allViews ? `every view${native ? ', high-res per grid shape' : ''}` : `${view} view`})`);
  const run = await timings.time('keys', () => runKeyVariance(
    { live: { model: common.model, images: k.images, ...(native ? {} : { resolution: k.resolution as number }), device: common.device, ...(text !== undefined ? { text } : {}) } },
    {
      layers: '*', view, allViews, groupHighres: native && allViews, minGroupImages: k.minGroupImages, statistic: k.statistic, threshold: k.threshold, blockLayers: k.blockLayers, randomSeed: common.seed,
      histogramBins: k.histogramBins, perHead: k.perHead, state: k.state ?? join(common.out, 'key_variance.state'), limit: k.n,
      model: modelName, imageSource: k.images, out: common.out,
    },
    { onProgress: (e) => reportProgress({ step: 'keys: key variance', done: e.done, total: e.total, unit: 'images' }) },
  ));
  const kv = run.result;
  const spec = k.images.startsWith('dataset:') ? parseDatasetSpec(k.images) : undefined;
  const dataset = await timings.time('hash', () => datasetEntry(spec?.name ?? 'images', spec?.root ?? k.images, common.hashData, { count: kv.nImages, ...(spec?.options.split ? { split: spec.options.split } : {}) }));
  let prompt = text;
  if (prompt === undefined) {
    const proc = await loadProcessor(common.model);
    prompt = renderPrompt({ question: '', prefix: '' }, 1, proc.template, proc.tokenizer);
  }
  const flagged = kv.layers.filter((l) => kv.blockedLayers.includes(l.layer)).map((l) => `${l.layer}:${l.inputAgnostic.length}`).join(', ');
  const others = (kv.otherViews ?? []).map((o) => {
    const per = o.layers.filter((l) => kv.blockedLayers.includes(l.layer)).map((l) => `${l.layer}:${l.inputAgnostic.length}`).join(', ');
    const g = o.group ? `, grid group of ${o.group.nImages} image(s)${o.group.used ? '' : ` — under minGroupImages ${o.group.minImages}, not used for blocking`}` : '';
    return `${o.view} view ${o.grid.rows}x${o.grid.cols} (its own variance, same threshold${g}): ${per || '(none)'};`;
  });
  const notes = [
    `Key variance: ${kv.nImages} images at ${native ? 'native resolution (high-res view per grid shape)' : `${k.resolution}x${k.resolution} px`}, ${kv.grid.rows}x${kv.grid.cols} ${kv.view} grid, statistic ${kv.statistic};`,
    `threshold ${kv.threshold.value.toPrecision(6)} (${kv.threshold.method});`,
    `input-agnostic positions per blocked layer (layer:count) ${flagged || '(none)'}${others.length ? ';' : '.'}`,
    ...others,
    k.prompt === 'benchmark'
      ? `Keys prompt: the ${k.promptBenchmark.toUpperCase()} benchmark prompt (the family's lmms-eval format, its system turn) with question ${JSON.stringify(k.question)}.`
      : 'Keys prompt: the extraction default (the checkpoint chat template, no question).',
  ];
  if (common.pictures.images > 0) {
    const drawn = await timings.time('pictures', () => keysPictures(common.out, kv));
    notes.push(`Variance maps of layer(s) ${drawn.map((f) => f.replace(/\D+/g, '')).join(', ')} in samples/.`);
  }
  return { kv, dataset, prompt, notes };
}

async function runKeys(cfg: KeysExperimentConfig, modelName: string, timings: Timings, say: (m: string) => void): Promise<Outcome> {
  // Check the image list early: a wrong path should fail before the model loads.
  if (!cfg.images.startsWith('dataset:')) await listImages(cfg.images);
  const r = await computeKeys(cfg, cfg, modelName, timings, say);
  return { datasets: [r.dataset], prompts: { extraction: r.prompt }, files: [RUN_FILES.keyVariance], notes: r.notes };
}

// ---- blocking ----

async function withModel<T>(cfg: ExperimentConfig, timings: Timings, f: (m: VisionLanguageModelApi) => Promise<T>): Promise<T> {
  const model = await timings.time('model', () => loadVisionModel(cfg.model, { device: cfg.device, ...(cfg.threads ? { threads: cfg.threads } : {}) }));
  try {
    return await f(model);
  } finally {
    await model.dispose();
  }
}

async function runBlocking(cfg: BlockingConfig, modelName: string, timings: Timings, say: (m: string) => void): Promise<Outcome> {
  const names = cfg.benchmarks.map((b) => b.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new KvlensInputError(`benchmark "${dup}" is listed twice (each writes results/outputs/${dup}.jsonl)`, 'benchmarks');
  const datasets: DatasetEntry[] = [];
  const prompts: Record<string, string> = {};
  const notes: string[] = [];
  let kv: KeyVariance;
  if (cfg.keyVariance) {
    kv = await readKeyVariance(cfg.keyVariance);
    await writeRun.keyVariance(cfg.out, kv);
    notes.push(`Input-agnostic keys from ${cfg.keyVariance} (${kv.nImages} images, threshold ${kv.threshold.value.toPrecision(6)} ${kv.threshold.method}).`);
  } else {
    const r = await computeKeys(cfg.keys!, cfg, modelName, timings, say, cfg.keys!.allViews || cfg.blockViews === 'all');
    kv = r.kv;
    datasets.push(r.dataset);
    prompts.keys = r.prompt;
    notes.push(...r.notes);
  }
  const totals = await benchmarkTotals(cfg.benchmarks);
  const bench = await withModel(cfg, timings, async (model) => {
    // Each benchmark's clock starts when it starts (a 0/total event), not at its first answer: no absurd first rate.
    const start = (i: number) => {
      const b = cfg.benchmarks[i]?.name;
      if (b && totals[b]) reportProgress({ step: `blocking ${b}`, done: 0, total: totals[b], unit: 'questions' });
    };
    start(0);
    const r = await timings.time('benchmark', () => runBlockingBenchmarks(cfg, kv, model, cfg.out, modelName, (b, done) => {
      reportProgress({ step: `blocking ${b}`, done, total: Math.max(totals[b] ?? done, done), unit: 'questions' });
      if (done === totals[b]) start(cfg.benchmarks.findIndex((x) => x.name === b) + 1);
    }));
    if (cfg.pictures.questions > 0) {
      say(`text -> image attention for ${cfg.pictures.questions} question(s)`);
      const att = await timings.time('pictures', async () => writeAttentionPictures(model, cfg.out, await benchmarkAttentionRequests(cfg.benchmarks, model.family, cfg.pictures.questions), 'blocking'));
      notes.push(...att.notes, ...(att.written.length ? [`Text -> image attention (unblocked prompt, every layer, heads averaged) for ${att.written.length} question(s) in attention/: ${att.written.join(', ')}.`] : []));
    }
    return r;
  });
  await writeRun.benchmarks(cfg.out, bench.benchmarks);
  for (const [b, p] of Object.entries(bench.prompts)) prompts[b] = p;
  for (const b of cfg.benchmarks) datasets.push(await timings.time('hash', () => datasetEntry(b.name, b.data, cfg.hashData, b.name === 'pope' ? { split: b.splits.join(',') } : b.name === 'blink' ? { split: b.split } : {})));
  const blocked = bench.benchmarks.conditions.filter((c) => c.name !== 'none').map((c) => `${c.name}: ${c.blockedPositions ?? 0} grid positions over layers ${c.blockedLayers?.join(',')}`);
  notes.push(`Format ${bench.result.format}; ${bench.result.items} questions, ${bench.result.prefills} image prefills, ${bench.result.reusedAnswers ?? 0} answers reused from the same question on the same image; ${blocked.join('; ')}. Blocked views: ${cfg.blockViews === 'all' ? `all (${[...new Set([kv.view ?? 'base', ...(kv.otherViews ?? []).map((o) => o.view)])].join(' + ')}, each view's own flagged positions${groupsNote(kv)})` : `base (the ${kv.view ?? 'base'} view the variance was computed on)`}. Grid match: ${cfg.gridMatch}${gridFallbackNote(bench.gridFallbacks)}. Raw outputs: results/outputs/<benchmark>.jsonl.`);
  return { datasets, prompts, files: [RUN_FILES.keyVariance, RUN_FILES.benchmarks, ...cfg.benchmarks.map((b) => `results/outputs/${b.name}.jsonl`)], notes };
}

/** The grid groups a blocking run uses (keys on native-resolution images). */
function groupsNote(kv: KeyVariance): string {
  const g = (kv.otherViews ?? []).filter((o) => o.group);
  if (g.length === 0) return '';
  const used = g.filter((o) => o.group!.used).map((o) => `${o.grid.rows}x${o.grid.cols}`);
  return `; high-res per grid shape: each image blocked from its own shape's group (used: ${used.join(', ') || 'none'}; ${g.length - used.length} group(s) under minGroupImages not used)`;
}

/** The prefills blocked from another grid shape's group (gridMatch 'nearest'), for the manifest notes. */
function gridFallbackNote(f: ReadonlyMap<string, number>): string {
  if (f.size === 0) return '';
  const n = [...f.values()].reduce((a, b) => a + b, 0);
  return ` (${n} image prefill(s) had a high-res grid shape with no usable grid group and were blocked from the nearest group by aspect ratio: ${[...f].map(([k, c]) => `${k} ×${c}`).join(', ')})`;
}

// ---- prefix ----

async function runPrefixExperiment(cfg: PrefixConfig, modelName: string, timings: Timings, say: (m: string) => void): Promise<Outcome> {
  const r = await runPrefix(cfg, modelName, timings, say);
  await writeRun.prefix(cfg.out, r.result);
  const dataset = await timings.time('hash', () => datasetEntry(taskDataset(cfg.task), cfg.task.data, cfg.hashData, { count: r.images }));
  const notes = [`Prefixes (before the image, separator ${JSON.stringify(cfg.separator)}): ${r.result.conditions.map((c) => `${c.name}=${JSON.stringify(c.prefix)}`).join(', ')}; same images and seed ${cfg.seed} in every condition.`];
  if (r.missing.length) notes.push(`${r.missing.length} dataset images were not in the stores.`);
  if (r.reused.length) notes.push(`Not extracted again (${r.extractions} of ${PREFIX_CONDITIONS.length} conditions extracted): ${r.reused.join('; ')}.`);
  if (r.skipped.length) notes.push(`${r.skipped.length} image extraction(s) skipped (onError: skip): ${r.skipped.slice(0, 3).join('; ')}${r.skipped.length > 3 ? '; ...' : ''}.`);
  return { datasets: [dataset], prompts: r.prompts, files: [RUN_FILES.prefix], notes, skipped: r.skipped };
}

// ---- underutil ----

async function runUnderutilExperiment(cfg: UnderutilConfig, modelName: string, timings: Timings, say: (m: string) => void): Promise<Outcome> {
  const subtasks = underutilSubtasks(cfg);
  const total = await underutilTotal(cfg, subtasks);
  const picNotes: string[] = [];
  const r = await withModel(cfg, timings, async (model) => {
    if (total) reportProgress({ step: 'underutil BLINK', done: 0, total, unit: 'questions' });
    const res = await timings.time('underutil', () => runUnderutil(cfg, model, cfg.out, modelName, (done) => {
      reportProgress({ step: 'underutil BLINK', done, total: Math.max(total, done), unit: 'questions' });
    }));
    if (cfg.pictures.questions > 0) {
      say(`text -> image attention for ${cfg.pictures.questions} question(s)`);
      const att = await timings.time('pictures', async () => writeAttentionPictures(model, cfg.out, await underutilAttentionRequests(cfg, subtasks, model.family, cfg.pictures.questions), 'underutil'));
      picNotes.push(...att.notes, ...(att.written.length ? [`Text -> image attention (every layer, heads averaged, to the reference image) for ${att.written.length} question(s) in attention/.`] : []));
    }
    return res;
  });
  await writeRun.underutil(cfg.out, r.result);
  const datasets: DatasetEntry[] = [];
  for (const s of subtasks) datasets.push(await timings.time('hash', () => datasetEntry(`blink/${s}`, join(cfg.data, s), cfg.hashData, { split: 'val', count: r.outcomes.filter((o) => o.subtask.replace(/ /g, '_') === s).length })));
  const rates = r.result.subtasks.map((s) => `${s.name}: layer ${s.layer}, values right & MLM wrong ${(100 * underutilRate(s.table)).toFixed(1)}%`);
  const notes = [`${r.outcomes.length} questions; ${rates.join('; ')}.`, ...(r.skipped.length ? [`Skipped ${r.skipped.length}: ${r.skipped.slice(0, 3).join('; ')}.`] : []), ...picNotes];
  return { datasets, prompts: r.prompt ? { blink: r.prompt } : {}, files: [RUN_FILES.underutil, 'results/outputs/underutil.jsonl'], notes };
}
