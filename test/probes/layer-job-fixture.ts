// A layer job for the layer-runner tests: the few-shot probe on a synthetic store whose planted
// signal grows with the layer index (so the layer curve is known).
import { runFewShotProbe } from '../../src/probes/fewshot-seg.js';
import { syntheticSegItems, syntheticSegLoader } from '../../src/probes/synthetic.js';
import type { ProbeResult } from '../../src/probes/results.js';
import { KvlensInputError } from '../../src/util/errors.js';

export async function syntheticLayerProbe(args: { layer: number; seed: number }): Promise<ProbeResult> {
  const spec = { images: 24, rows: 8, cols: 8, dim: 24, height: 32, width: 32, numClasses: 3, signal: 0.4 * args.layer, seed: 5, alignToTokens: true };
  return runFewShotProbe(syntheticSegItems(spec), syntheticSegLoader(spec), { episodes: 6, seed: args.seed });
}

/** A job that fails on bad input, as a probe does for a view the store lacks. */
export function badInputJob(): never {
  throw new KvlensInputError('view "nosuch" is not in the store (stored: base)', '/stores/x');
}
