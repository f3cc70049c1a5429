// Preprocessing tensors of a run (pixel_values, image_sizes, input_ids) and where the model's inputs come from.
// The model tensors are always computed from the run's STORED pixel_values / input_ids, so a preprocessing
// difference never hides or causes a model difference. The preprocessing tensors themselves are reported
// "from-fixture" until kvlens computes them from inputs/*.png and the prompt texts.

import type { Tensor } from '../../tensor/tensor.js';
import type { SiglipVisionConfig } from '../../models/siglip/config.js';
import type { FixtureRun } from '../manifest.js';
import type { RowSink } from './common.js';

const NOT_YET = 'read from the fixture: kvlens does not compute this preprocessing step here yet';

/**
 * The run's pixel_values as the tower input [tile, C, S, S]. A run without its own pixel_values borrows them from
 * another run of the same model with the same notes.run_images (the fixture notes say such runs share them).
 */
export async function pixelValuesFor(sink: RowSink, vision: SiglipVisionConfig): Promise<Tensor | undefined> {
  const found = storedPixelValues(sink);
  if (!found) return undefined;
  const { tensor: pv, from } = found;
  if (from === sink.ctx.run.name) sink.mark('pixel_values', 'from-fixture', NOT_YET);
  const s = pv.shape;
  const S = vision.image_size;
  if (s.at(-1) !== S || s.at(-2) !== S || s.at(-3) !== vision.num_channels || (s.length !== 4 && s.length !== 5)) {
    sink.mark('pixel_values', 'error', `shape [${s.join(', ')}] is not [(images,) tiles, ${vision.num_channels}, ${S}, ${S}]`);
    return undefined;
  }
  return pv;
}

function sameImages(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  return !!a && !!b && a.length === b.length && a.every((x, i) => x === b[i]);
}

export function storedPixelValues(sink: RowSink): { tensor: Tensor; from: string } | undefined {
  const { fx, run } = sink.ctx;
  if (sink.has('pixel_values')) return { tensor: sink.ref('pixel_values'), from: run.name };
  const mine = fx.runImages(run.name);
  const donor: FixtureRun | undefined = fx.runs.find((r) => r !== run && sameImages(fx.runImages(r.name), mine) && fx.has(r, 'pixel_values'));
  if (!donor) return undefined;
  return { tensor: fx.read(donor, 'pixel_values'), from: donor.name };
}

/** Mark the preprocessing tensors that kvlens does not recompute in this build. */
export function markPreprocessing(sink: RowSink, names: readonly string[]): void {
  for (const n of names) if (sink.has(n)) sink.mark(n, 'from-fixture', NOT_YET);
}
