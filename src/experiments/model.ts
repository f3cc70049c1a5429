// What experiments need to know about a checkpoint of any family before opening it: its image-grid views, and
// which one an experiment reads. Nothing here names a family.

import { familySpec, readModelType, sequenceViews } from '../models/index.js';
import { KvlensInputError } from '../util/errors.js';

export type GridView = 'base' | 'highres';

/** The image-grid views a checkpoint's token map has ('base' and 'highres' for the LLaVA families, Qwen's one grid as 'highres'). */
export function modelViews(dir: string): readonly string[] {
  return sequenceViews(familySpec(readModelType(dir)));
}

/** The family name of a checkpoint (its spec's family, as the loaded model's interface reports it). */
export function modelFamily(dir: string): string {
  return familySpec(readModelType(dir)).family;
}

/** The view an experiment reads: the configured one (checked against the model), else 'base' where it exists, else the one grid. */
export function resolveView(dir: string, view: GridView | undefined, field = 'view'): GridView {
  const have = modelViews(dir);
  if (view !== undefined) {
    if (!have.includes(view)) throw new KvlensInputError(`field "${field}" is "${view}" but the ${readModelType(dir)} model has the view(s) ${have.join(', ')}`, dir);
    return view;
  }
  return have.includes('base') ? 'base' : 'highres';
}
