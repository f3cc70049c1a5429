// A vision tower's ORT session, built lean until a run asks for more than the lean outputs.
//
// Why: onnxruntime allocates every graph output in every run, fetched or not, and the allocation planner never
// reuses an output's buffer. A tower graph that exposes each layer's output (vision.{L}.out, for taps and parity)
// therefore holds all of them until the run ends: for SigLIP-so400m over 2 tiles that made the memory-pattern block
// 227 MiB instead of 61 MiB (26 x 6.4 MiB of unread outputs), mapped afresh in every prefill (58 k page faults) and
// added on top of the heap at the process's peak; with 10 anyres tiles it is ~1 GB. Most forwards fetch only the
// projector output, so the tower is built with the lean outputs first; the first run that fetches anything else
// replaces it with the full graph for the rest of the model's life. The lean session is released before the full one
// is created, so the tower's prepacked weights are never held twice.

import type { BuiltGraph } from '../../graph/builder.js';
import { OrtSession, type SessionOptions } from '../../runtime/index.js';

/** One build of the tower graph, and every output the tower offers (the same list whether or not they are outputs). */
export interface TowerBuild {
  readonly graph: BuiltGraph;
  readonly outputs: readonly string[];
}

export class TowerSession {
  private lean: OrtSession | null;
  private full: OrtSession | null = null;

  private constructor(
    lean: OrtSession,
    private readonly build: (allOutputs: boolean) => TowerBuild,
    private readonly options: SessionOptions,
    /** Outputs the lean graph has (e.g. projector.out). */
    readonly leanOutputs: readonly string[],
    /** Every output the tower offers (the full graph's). */
    readonly outputNames: readonly string[],
  ) {
    this.lean = lean;
  }

  /** `build(false)` must output exactly `leanOutputs`; `build(true)` every output in its `outputs` list. */
  static async create(build: (allOutputs: boolean) => TowerBuild, leanOutputs: readonly string[], options: SessionOptions = {}): Promise<TowerSession> {
    const lean = build(false);
    return new TowerSession(await OrtSession.create(lean.graph, options), build, options, leanOutputs, lean.outputs);
  }

  /** Whether the full graph (every output) has replaced the lean one. */
  get isFull(): boolean {
    return this.full !== null;
  }

  /** The session to run for these fetches: the lean one while they are all lean outputs. */
  async sessionFor(fetch: readonly string[]): Promise<OrtSession> {
    if (this.full) return this.full;
    if (this.lean && fetch.every((f) => this.leanOutputs.includes(f))) return this.lean;
    if (this.lean) {
      const lean = this.lean;
      this.lean = null;
      await lean.dispose();
    }
    this.full = await OrtSession.create(this.build(true).graph, this.options);
    return this.full;
  }

  async dispose(): Promise<void> {
    for (const s of [this.lean, this.full]) if (s) await s.dispose();
    this.lean = null;
    this.full = null;
  }
}
