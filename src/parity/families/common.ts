// What every model family's parity executor shares: the context it gets, row helpers, and the checks that need
// no model (raw images decoded from inputs/*.png).

import { join } from 'node:path';
import type { Device } from '../../runtime/index.js';
import { tensor, type Tensor } from '../../tensor/tensor.js';
import { loadImage } from '../../preprocess/image.js';
import { compareTensors, EXACT, type ParityRow, type Tolerance } from '../compare.js';
import type { FixtureRun, FixtureSet, TensorSpec } from '../manifest.js';
import type { ModelCandidate } from '../mapping.js';

export interface FamilyContext {
  readonly fx: FixtureSet;
  readonly run: FixtureRun;
  readonly model: ModelCandidate;
  /** Absolute model directory. */
  readonly modelDir: string;
  readonly device: Device;
  /** Loaded models shared between runs of the same model directory (disposed by the runner). */
  readonly cache: ModelCache;
}

export class ModelCache {
  private readonly entries = new Map<string, { value: unknown; dispose: () => Promise<void> }>();

  async get<T>(key: string, load: () => Promise<T>, dispose: (v: T) => Promise<void>): Promise<T> {
    const e = this.entries.get(key);
    if (e) return e.value as T;
    const value = await load();
    this.entries.set(key, { value, dispose: () => dispose(value) });
    return value;
  }

  async disposeAll(): Promise<void> {
    for (const e of this.entries.values()) await e.dispose();
    this.entries.clear();
  }
}

/** Collects rows for a run; every manifest tensor must end up with exactly one row. */
export class RowSink {
  readonly rows: ParityRow[] = [];
  private readonly done = new Set<string>();

  constructor(readonly ctx: FamilyContext) {}

  has(name: string): boolean {
    return this.ctx.fx.has(this.ctx.run, name);
  }

  specs(): readonly TensorSpec[] {
    return this.ctx.run.specs;
  }

  ref(name: string): Tensor {
    return this.ctx.fx.read(this.ctx.run, name);
  }

  isDone(name: string): boolean {
    return this.done.has(name);
  }

  private shapeOf(name: string): readonly number[] {
    return this.ctx.fx.spec(this.ctx.run, name)?.shape ?? [];
  }

  compare(name: string, got: Tensor, tol: Tolerance, include?: Uint8Array, note?: string): void {
    if (this.done.has(name)) return;
    this.done.add(name);
    this.rows.push(compareTensors(this.ctx.run.name, name, this.ref(name), got, tol, include, note));
  }

  mark(name: string, status: 'from-fixture' | 'input' | 'error', note: string): void {
    if (this.done.has(name)) return;
    this.done.add(name);
    this.rows.push({ run: this.ctx.run.name, name, shape: this.shapeOf(name), status, note });
  }

  /** Rows for every tensor nobody produced: these count as failures (the tensor could not be computed). */
  finish(): ParityRow[] {
    for (const s of this.ctx.run.specs) {
      if (!this.done.has(s.name)) this.mark(s.name, 'error', 'kvlens has no computation for this tensor');
    }
    return this.rows;
  }
}

/** The input image a raw-image tensor holds: "= inputs/x.png" in its meaning, else the run's image with that size. */
export function rawImagePath(ctx: FamilyContext, spec: TensorSpec): string | undefined {
  const m = /(inputs\/[\w.-]+\.(?:png|jpe?g|webp))/i.exec(spec.meaning);
  if (m) return m[1];
  const [h, w] = spec.shape;
  return ctx.fx.runImages(ctx.run.name)?.find((p) => new RegExp(`_${w}x${h}\\.|_${h}x${w}\\.`).test(p));
}

/** image_*.rgb_uint8 tensors: decoded from inputs/*.png by kvlens and compared exactly. */
export async function checkRawImages(sink: RowSink): Promise<void> {
  for (const s of sink.specs()) {
    if (!/rgb_uint8$/.test(s.name)) continue;
    const rel = rawImagePath(sink.ctx, s);
    if (!rel) { sink.mark(s.name, 'error', 'cannot tell which inputs/ image this is'); continue; }
    const img = await loadImage(join(sink.ctx.fx.root, rel));
    sink.compare(s.name, tensor('uint8', [img.height, img.width, 3], img.data), EXACT, undefined, `decoded ${rel}`);
  }
}

/** "hidden_states.3" -> 3 for names matching prefix + index + suffix. */
export function indexed(names: readonly string[], re: RegExp): Map<number, string> {
  const out = new Map<number, string>();
  for (const n of names) {
    const m = re.exec(n);
    if (m) out.set(Number(m[1]), n);
  }
  return out;
}
