// Where a run's stored pixel_values come from. Model tensors are always computed from the run's STORED
// pixel_values, so a preprocessing difference never hides or causes a model difference; the families recompute
// pixel_values from inputs/*.png with kvlens' processors and compare them separately.

import type { Tensor } from '../../tensor/tensor.js';
import type { SiglipVisionConfig } from '../../models/siglip/config.js';
import type { FixtureRun } from '../manifest.js';
import type { RowSink } from './common.js';

const NOT_YET = 'read from the fixture: kvlens cannot recompute it (no raw images listed in notes.run_images or no preprocessor_config.json)';

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

/** Mark preprocessing tensors a family does not recompute (reported as read from the fixture). */
export function markPreprocessing(sink: RowSink, names: readonly string[], note = NOT_YET): void {
  for (const n of names) if (sink.has(n)) sink.mark(n, 'from-fixture', note);
}
