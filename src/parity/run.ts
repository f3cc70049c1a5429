// `kvlens parity`: recompute every tensor of every run of a fixture set with the kvlens engine and compare.
// Runs are mapped to models structurally (src/parity/mapping.ts); runs of model families kvlens does not
// implement are listed as skipped, never failed.

import { join } from 'node:path';
import type { Device } from '../runtime/index.js';
import type { ParityRow } from './compare.js';
import { FixtureSet } from './manifest.js';
import { mapRunToModel, modelCandidates } from './mapping.js';
import { ModelCache, type FamilyContext, type RowSink } from './families/common.js';
import { siglipParity, SIGLIP_MODEL_TYPES } from './families/siglip.js';
import { llavaParity, LLAVA_MODEL_TYPES } from './families/llava.js';
import { llavaNextParity, LLAVA_NEXT_MODEL_TYPES } from './families/llava-next.js';
import { qwen2VlParity, QWEN2_VL_MODEL_TYPES } from './families/qwen2-vl.js';
import { qwen2Parity, QWEN2_MODEL_TYPES } from './families/qwen2.js';
import { summarize, type ParitySummary } from './report.js';

type Executor = (ctx: FamilyContext) => Promise<RowSink>;

const FAMILIES: Array<{ types: readonly string[]; run: Executor }> = [
  { types: SIGLIP_MODEL_TYPES, run: siglipParity },
  { types: LLAVA_MODEL_TYPES, run: llavaParity },
  { types: LLAVA_NEXT_MODEL_TYPES, run: llavaNextParity },
  { types: QWEN2_VL_MODEL_TYPES, run: qwen2VlParity },
  { types: QWEN2_MODEL_TYPES, run: qwen2Parity },
];

export function supportedModelTypes(): string[] {
  return FAMILIES.flatMap((f) => f.types);
}

export interface ParityOptions {
  readonly device?: Device;
  /** Only these runs (names as in the manifest). */
  readonly runs?: readonly string[];
  /** Called after each run with its rows (for streaming output). */
  readonly onRun?: (rows: readonly ParityRow[]) => void;
}

export interface ParityResult {
  readonly rows: ParityRow[];
  readonly summary: ParitySummary;
}

export async function runParity(root: string, opts: ParityOptions = {}): Promise<ParityResult> {
  const fx = FixtureSet.open(root);
  const device = opts.device ?? 'cpu';
  const wanted = opts.runs?.length ? opts.runs : undefined;
  for (const w of wanted ?? []) fx.run(w); // unknown names fail loudly
  const candidates = modelCandidates(fx);
  const cache = new ModelCache();
  const rows: ParityRow[] = [];
  try {
    for (const run of fx.runs) {
      if (wanted && !wanted.includes(run.name)) continue;
      const runRows = await parityOfRun(fx, run.name, candidates, cache, device);
      rows.push(...runRows);
      opts.onRun?.(runRows);
    }
  } finally {
    await cache.disposeAll();
  }
  return { rows, summary: summarize(rows) };
}

async function parityOfRun(fx: FixtureSet, runName: string, candidates: ReturnType<typeof modelCandidates>, cache: ModelCache, device: Device): Promise<ParityRow[]> {
  const run = fx.run(runName);
  const all = (status: ParityRow['status'], note: string): ParityRow[] => [{ run: run.name, name: `(all ${run.specs.length} tensors)`, shape: [], status, note }];
  const mapping = mapRunToModel(fx, run, candidates);
  if (!mapping.ok) return all('error', mapping.reason);
  const family = FAMILIES.find((f) => f.types.includes(mapping.model.modelType));
  if (!family) {
    return all('skipped', `model ${mapping.model.dir} has model_type "${mapping.model.modelType}", which kvlens does not implement (supported: ${supportedModelTypes().join(', ')})`);
  }
  const ctx: FamilyContext = { fx, run, model: mapping.model, modelDir: join(fx.root, mapping.model.dir), device, cache };
  try {
    const sink = await family.run(ctx);
    return sink.finish();
  } catch (e) {
    return all('error', `${(e as Error).name}: ${(e as Error).message}`);
  }
}
