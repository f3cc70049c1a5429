// The run manifest of `kvlens run`: what is needed to know exactly what produced a run's numbers — model and its
// config hash, the experiment file and its hash, every dataset with a hash of its files, the prompts as rendered,
// seeds, dtype, device, kvlens version and per-step wall-clock timings.

import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { writeRun } from '../results/rundir.js';
import type { Manifest } from '../results/schema.js';
import { kvlensVersion, modelConfigSha256 } from '../store/provenance.js';
import { KvlensInputError } from '../util/errors.js';

export type DatasetEntry = Manifest['datasets'][number];

/** Every regular file below `root` (or `root` itself), sorted by relative path, hidden files skipped. */
function listFiles(root: string): string[] {
  const st = statSync(root);
  if (!st.isDirectory()) return [root];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(root);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function sha256File(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (c) => h.update(c)).on('error', rej).on('end', () => res(h.digest('hex')));
  });
}

/**
 * A dataset's hash: sha256 over "relative path \t sha256(file bytes)" lines of every file below the root ('content'),
 * or over "path \t size \t mtime" ('listing', for sets too large to read twice). Returns the file count too.
 */
export async function hashDataset(root: string, mode: 'content' | 'listing' = 'content'): Promise<{ hash: string; files: number }> {
  let files: string[];
  try {
    files = listFiles(root);
  } catch (e) {
    throw new KvlensInputError(`cannot read the dataset (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, root);
  }
  const h = createHash('sha256');
  h.update(`kvlens-dataset-hash/${mode}\n`);
  for (const f of files) {
    const rel = relative(root, f).split(sep).join('/') || basename(f);
    if (mode === 'content') h.update(`${rel}\t${await sha256File(f)}\n`);
    else {
      const st = statSync(f);
      h.update(`${rel}\t${st.size}\t${st.mtimeMs}\n`);
    }
  }
  return { hash: `${mode === 'content' ? 'sha256' : 'listing-sha256'}:${h.digest('hex')}`, files: files.length };
}

export async function datasetEntry(name: string, root: string, mode: 'content' | 'listing', extra: Partial<DatasetEntry> = {}): Promise<DatasetEntry> {
  const { hash } = await hashDataset(root, mode);
  return { name, path: root, hash, ...extra };
}

/** Wall-clock seconds per named step; a step timed twice adds up. */
export class Timings {
  readonly steps: Record<string, number> = {};
  async time<T>(step: string, f: () => Promise<T> | T): Promise<T> {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      this.steps[step] = (this.steps[step] ?? 0) + (performance.now() - t0) / 1000;
    }
  }
}

interface ModelConfigJson {
  text_config?: { num_hidden_layers?: number };
  vision_config?: { num_hidden_layers?: number };
  num_hidden_layers?: number;
}

export function modelEntry(modelDir: string, id: string): Manifest['models'][number] {
  const c = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as ModelConfigJson;
  const lmLayers = c.text_config?.num_hidden_layers ?? c.num_hidden_layers;
  if (!lmLayers) throw new KvlensInputError('config.json names no text_config.num_hidden_layers', join(modelDir, 'config.json'));
  const visionLayers = c.vision_config?.num_hidden_layers;
  return { id, configHash: `sha256:${modelConfigSha256(modelDir)}`, lmLayers, ...(visionLayers !== undefined ? { visionLayers } : {}) };
}

export interface ManifestInput {
  readonly experiment: string;
  readonly modelDir: string;
  readonly modelName: string;
  readonly datasets: readonly DatasetEntry[];
  readonly prompts: Record<string, string>;
  readonly seeds: readonly number[];
  readonly dtype: string;
  readonly device: string;
  readonly timings: Timings;
  /** The experiment file, its hash and the validated config (defaults filled in). */
  readonly config: { readonly file?: string; readonly sha256: string; readonly resolved: unknown };
  readonly notes?: string;
  readonly extraModels?: Manifest['models'];
}

export function buildManifest(m: ManifestInput): Manifest {
  return {
    experiment: m.experiment,
    kvlensVersion: kvlensVersion(),
    createdAt: new Date().toISOString(),
    models: [modelEntry(m.modelDir, m.modelName), ...(m.extraModels ?? [])],
    datasets: [...m.datasets],
    prompts: { ...m.prompts },
    seeds: [...m.seeds],
    dtype: m.dtype,
    device: m.device,
    timings: { ...m.timings.steps },
    config: { ...(m.config.file ? { file: m.config.file } : {}), sha256: m.config.sha256, resolved: m.config.resolved as Record<string, unknown> },
    ...(m.notes ? { notes: m.notes } : {}),
  };
}

export const writeManifest = (dir: string, m: Manifest) => writeRun.manifest(dir, m);
