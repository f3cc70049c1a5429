// The run directory: what an experiment run (the runner, issue 7) writes and `kvlens report` / `kvlens view` read.
//
//   <run>/manifest.json              ManifestSchema: experiment, models (+ config hash), datasets (+ hashes), prompts, seeds,
//                                    dtype, device, kvlens version, timings
//   <run>/results/probes.json        { rows: ProbeRow[] }  (task, model, tap, layer, metric, value, n, seed)
//   <run>/results/probes.csv         the same rows as CSV (either file may be present; JSON wins when both are)
//   <run>/results/key_variance.json  per layer: per-position cross-image key variance, histogram, input-agnostic positions;
//                                    threshold + how it was chosen; grid shape so positions map to a variance map
//   <run>/results/benchmarks.json    POPE / MME / BLINK per condition: none / block-input-agnostic / block-random
//   <run>/results/prefix.json        probe rows per prefix condition: none / correct / random / incorrect
//   <run>/results/underutil.json     BLINK 2x2 (value right/wrong x MLM right/wrong) per subtask at the chosen layer
//   <run>/samples/index.json         catalogue of sample pictures in samples/ (masks, correspondences, video masks)
//   <run>/samples/*.png|jpg|svg      the pictures
//   <run>/masks/<image-id>.json      per-image probe masks per layer at token-grid resolution (viewer)
//   <run>/attention/<image-id>.json  head-averaged attention from text tokens to image tokens per layer (viewer)
//   <run>/store                      optional: a feature store (directory or symlink) for the viewer
//
// Every file is optional except manifest.json; readers skip what is missing and fail loudly on what is malformed.
// Writers go through writeJsonAtomic (validate, temp file, rename). Full field docs: docs/run-dir.md.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KvlensInputError } from '../util/errors.js';
import { probeRowsFromCsv, readJsonValidated, writeFileAtomic, writeJsonAtomic, probeRowsToCsv } from './io.js';
import {
  AttentionFileSchema, BenchmarksSchema, KeyVarianceSchema, MaskFileSchema, ManifestSchema, PrefixSchema, ProbesFileSchema, SampleIndexSchema, UnderutilSchema,
  type AttentionFile, type MaskFile, type Benchmarks, type KeyVariance, type Manifest, type PrefixResults, type ProbeRow, type SampleIndex, type Underutil,
} from './schema.js';

export const RUN_FILES = {
  manifest: 'manifest.json',
  probesJson: 'results/probes.json',
  probesCsv: 'results/probes.csv',
  keyVariance: 'results/key_variance.json',
  benchmarks: 'results/benchmarks.json',
  prefix: 'results/prefix.json',
  underutil: 'results/underutil.json',
  samplesDir: 'samples',
  samplesIndex: 'samples/index.json',
  masksDir: 'masks',
  attentionDir: 'attention',
  store: 'store',
} as const;

export interface SampleEntry { file: string; title: string; kind: 'mask' | 'correspondence' | 'video' | 'other'; task?: string; caption?: string }

/** Everything a run directory holds; absent files are undefined and listed in `missing` (relative paths). */
export interface RunResults {
  dir: string;
  manifest: Manifest;
  probes?: ProbeRow[];
  /** probes.json's protocol (views, folds, ... per probe task), when it has one. */
  probesProtocol?: Record<string, unknown>;
  keyVariance?: KeyVariance;
  benchmarks?: Benchmarks;
  prefix?: PrefixResults;
  underutil?: Underutil;
  samples: SampleEntry[];
  missing: string[];
  /** Non-fatal observations for the report (e.g. probe rows with undefined values that were skipped). */
  notes: string[];
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function isRunDir(dir: string): Promise<boolean> {
  return exists(join(dir, RUN_FILES.manifest));
}

/** Sample pictures: the catalogue when present, else every picture file in samples/ titled by its name. */
async function loadSamples(dir: string): Promise<SampleEntry[] | undefined> {
  const sdir = join(dir, RUN_FILES.samplesDir);
  if (!(await exists(sdir))) return undefined;
  const indexPath = join(dir, RUN_FILES.samplesIndex);
  if (await exists(indexPath)) {
    const index: SampleIndex = await readJsonValidated(indexPath, SampleIndexSchema);
    for (const s of index.samples) {
      if (!(await exists(join(sdir, s.file)))) throw new KvlensInputError(`samples[].file "${s.file}" is listed but not present in samples/`, indexPath);
    }
    return index.samples;
  }
  const names = (await readdir(sdir)).filter((n) => /\.(png|jpe?g|svg)$/i.test(n)).sort();
  return names.map((file) => ({ file, title: file.replace(/\.[^.]+$/, ''), kind: 'other' as const }));
}

/** Read a run directory. Missing optional files are noted; malformed files throw KvlensInputError naming file + field. */
export async function loadRunDir(dir: string): Promise<RunResults> {
  const manifestPath = join(dir, RUN_FILES.manifest);
  if (!(await exists(manifestPath))) throw new KvlensInputError(`not a run directory: ${RUN_FILES.manifest} is missing (see docs/run-dir.md)`, dir);
  const manifest = await readJsonValidated(manifestPath, ManifestSchema);
  const missing: string[] = [];
  const optional = async <T>(rel: string, read: (p: string) => Promise<T>): Promise<T | undefined> => {
    const p = join(dir, rel);
    if (await exists(p)) return read(p);
    missing.push(rel);
    return undefined;
  };
  const notes: string[] = [];
  let probes: ProbeRow[] | undefined;
  let probesProtocol: Record<string, unknown> | undefined;
  let skipped = 0;
  if (await exists(join(dir, RUN_FILES.probesJson))) {
    const file = await readJsonValidated(join(dir, RUN_FILES.probesJson), ProbesFileSchema);
    probesProtocol = file.protocol;
    const all = file.rows;
    probes = all.filter((r): r is ProbeRow => r.value !== null);
    skipped = all.length - probes.length;
  } else if (await exists(join(dir, RUN_FILES.probesCsv))) {
    const p = join(dir, RUN_FILES.probesCsv);
    ({ rows: probes, skipped } = probeRowsFromCsv(await readFile(p, 'utf8'), p));
  } else missing.push(RUN_FILES.probesJson);
  if (skipped) notes.push(`${skipped} probe row(s) with an undefined (NaN/null) value were skipped.`);
  const keyVariance = await optional(RUN_FILES.keyVariance, (p) => readJsonValidated(p, KeyVarianceSchema));
  const benchmarks = await optional(RUN_FILES.benchmarks, (p) => readJsonValidated(p, BenchmarksSchema));
  const prefix = await optional(RUN_FILES.prefix, (p) => readJsonValidated(p, PrefixSchema));
  const underutil = await optional(RUN_FILES.underutil, (p) => readJsonValidated(p, UnderutilSchema));
  const samples = await loadSamples(dir);
  if (samples === undefined) missing.push(RUN_FILES.samplesDir);
  return { dir, manifest, probes, probesProtocol, keyVariance, benchmarks, prefix, underutil, samples: samples ?? [], missing, notes };
}

/** Writers for the runner: each validates, then writes atomically. */
export const writeRun = {
  manifest: (dir: string, m: Manifest) => writeJsonAtomic(join(dir, RUN_FILES.manifest), ManifestSchema, m),
  probes: async (dir: string, rows: readonly ProbeRow[], protocol?: Record<string, unknown>) => {
    await writeJsonAtomic(join(dir, RUN_FILES.probesJson), ProbesFileSchema, { rows: [...rows], protocol });
    await writeFileAtomic(join(dir, RUN_FILES.probesCsv), probeRowsToCsv(rows));
  },
  keyVariance: (dir: string, kv: KeyVariance) => writeJsonAtomic(join(dir, RUN_FILES.keyVariance), KeyVarianceSchema, kv),
  benchmarks: (dir: string, b: Benchmarks) => writeJsonAtomic(join(dir, RUN_FILES.benchmarks), BenchmarksSchema, b),
  prefix: (dir: string, p: PrefixResults) => writeJsonAtomic(join(dir, RUN_FILES.prefix), PrefixSchema, p),
  underutil: (dir: string, u: Underutil) => writeJsonAtomic(join(dir, RUN_FILES.underutil), UnderutilSchema, u),
  samplesIndex: (dir: string, s: SampleIndex) => writeJsonAtomic(join(dir, RUN_FILES.samplesIndex), SampleIndexSchema, s),
};

/** File name for a per-image file: image ids may contain '/' (ImageNet-S wnid/stem), so they are percent-encoded. */
export function imageFileName(imageId: string): string {
  return `${encodeURIComponent(imageId).replace(/\./g, '%2E')}.json`;
}

/** The probe masks for one image, or undefined when the run has none for it. */
export async function readMaskFile(dir: string, imageId: string): Promise<MaskFile | undefined> {
  const p = join(dir, RUN_FILES.masksDir, imageFileName(imageId));
  return (await exists(p)) ? readJsonValidated(p, MaskFileSchema) : undefined;
}

/** The stored text->image attention for one image, or undefined. */
export async function readAttentionFile(dir: string, imageId: string): Promise<AttentionFile | undefined> {
  const p = join(dir, RUN_FILES.attentionDir, imageFileName(imageId));
  return (await exists(p)) ? readJsonValidated(p, AttentionFileSchema) : undefined;
}

export const writeImageFiles = {
  mask: (dir: string, m: MaskFile) => writeJsonAtomic(join(dir, RUN_FILES.masksDir, imageFileName(m.imageId)), MaskFileSchema, m),
  attention: (dir: string, a: AttentionFile) => writeJsonAtomic(join(dir, RUN_FILES.attentionDir, imageFileName(a.imageId)), AttentionFileSchema, a),
};
