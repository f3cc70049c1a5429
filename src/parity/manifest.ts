// Reading a reference fixture set: manifest.json + models/ + runs/ + inputs/ (the layout of
// test/fixtures/hf-reference). Nothing here knows fixture names or sizes: runs are the safetensors files
// the manifest lists under runs/, and every tensor carries its manifest entry (shape, dtype, meaning).

import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { KvlensInputError } from '../util/errors.js';
import { readSafetensorsHeader, readTensor, type TensorEntry } from '../tensor/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';

const tensorSpecSchema = z.object({
  file: z.string(),
  name: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.string(),
  meaning: z.string().default(''),
}).passthrough();

const modelSpecSchema = z.object({
  dir: z.string(),
  config_full: z.record(z.string(), z.unknown()).optional(),
}).passthrough();

const manifestSchema = z.object({
  models: z.record(z.string(), modelSpecSchema).default({}),
  notes: z.record(z.string(), z.unknown()).default({}),
  tensors: z.array(tensorSpecSchema),
}).passthrough();

export type TensorSpec = z.infer<typeof tensorSpecSchema>;
export type Manifest = z.infer<typeof manifestSchema>;

/** One run: a safetensors file of reference tensors, in manifest order. */
export interface FixtureRun {
  readonly name: string;
  readonly file: string;
  readonly specs: readonly TensorSpec[];
}

export class FixtureSet {
  private readonly headers = new Map<string, ReadonlyMap<string, TensorEntry>>();

  private constructor(readonly root: string, readonly manifest: Manifest, readonly runs: readonly FixtureRun[]) {}

  static open(root: string): FixtureSet {
    const path = join(root, 'manifest.json');
    if (!existsSync(path)) throw new KvlensInputError('not a fixture set: manifest.json not found', root);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new KvlensInputError(`not valid JSON (${(e as Error).message})`, path);
    }
    const r = manifestSchema.safeParse(raw);
    if (!r.success) {
      const i = r.error.issues[0];
      throw new KvlensInputError(`field "${i.path.join('.')}": ${i.message}`, path);
    }
    const byFile = new Map<string, TensorSpec[]>();
    for (const t of r.data.tensors) {
      if (!t.file.startsWith('runs/')) continue;
      if (!byFile.has(t.file)) byFile.set(t.file, []);
      byFile.get(t.file)!.push(t);
    }
    const runs = [...byFile].map(([file, specs]) => ({ name: basename(file).replace(/\.safetensors$/, ''), file, specs }));
    return new FixtureSet(root, r.data, runs);
  }

  /** The note about a run, or undefined. Notes are keyed by run name in the known fixture sets. */
  note(key: string): unknown {
    return this.manifest.notes[key];
  }

  /** notes.run_images[run]: the raw images of a run, in prompt order (paths relative to the root). */
  runImages(run: string): string[] | undefined {
    const ri = this.manifest.notes.run_images;
    if (!ri || typeof ri !== 'object') return undefined;
    const v = (ri as Record<string, unknown>)[run];
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
  }

  /** notes.prompts[run]: the prompt text of a run, if recorded. */
  prompt(run: string): string | undefined {
    const p = this.manifest.notes.prompts;
    if (!p || typeof p !== 'object') return undefined;
    const v = (p as Record<string, unknown>)[run];
    return typeof v === 'string' ? v : undefined;
  }

  run(name: string): FixtureRun {
    const r = this.runs.find((x) => x.name === name);
    if (!r) throw new KvlensInputError(`no run "${name}" in the manifest (runs: ${this.runs.map((x) => x.name).join(', ')})`, this.root);
    return r;
  }

  private header(file: string): ReadonlyMap<string, TensorEntry> {
    let h = this.headers.get(file);
    if (!h) {
      h = readSafetensorsHeader(join(this.root, file)).tensors;
      this.headers.set(file, h);
    }
    return h;
  }

  has(run: FixtureRun, name: string): boolean {
    return this.header(run.file).has(name);
  }

  /** A reference tensor; the error names the run file and the tensor. */
  read(run: FixtureRun, name: string): Tensor {
    const e = this.header(run.file).get(name);
    if (!e) throw new KvlensInputError(`tensor "${name}" not found`, join(this.root, run.file));
    return readTensor(e);
  }

  spec(run: FixtureRun, name: string): TensorSpec | undefined {
    return run.specs.find((s) => s.name === name);
  }
}
