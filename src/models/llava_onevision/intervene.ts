// The paper's intervention as a BlockSpec: text tokens after an image lose attention to (some of) that image's
// keys in chosen layers, e.g. the last N. Positions come from the token ids themselves (the image token id marks
// every image position, newline features included), so the spec fits any prompt the processor built.

import { KvlensUsageError } from '../../util/errors.js';
import { span, type BlockSpec } from '../lm/index.js';

/** The last n of numLayers decoder layers. */
export function lastLayers(n: number, numLayers: number): number[] {
  if (!Number.isInteger(n) || n < 1 || n > numLayers) throw new KvlensUsageError(`cannot take the last ${n} of ${numLayers} layers`);
  return span(numLayers - n, numLayers);
}

export interface TextFromImageOptions {
  /** Which image (0-based, prompt order) when the prompt has several; default 0. */
  readonly image?: number;
  /** Keep only image keys whose offset in the image's token run passes (default: every image key). */
  readonly keys?: (offset: number) => boolean;
  /** Length of a cached prefix the ids continue (positions are absolute). Default 0. */
  readonly past?: number;
}

/** Contiguous runs [start, end) of the image token in a row of ids. */
export function imageRuns(ids: readonly number[], imageTokenId: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  ids.forEach((id, i) => {
    if (id !== imageTokenId) return;
    const last = runs.at(-1);
    if (last && last[1] === i) last[1] = i + 1;
    else runs.push([i, i + 1]);
  });
  return runs;
}

/**
 * Block every text token after image `image` from that image's keys (filtered by opts.keys) in `layers`: the prompt's
 * text positions explicitly (later images' tokens are not text), and every position after the prompt open-endedly
 * (`queriesFrom`), so continuations and generated tokens stay blocked too.
 */
export function blockTextFromImage(ids: readonly number[], imageTokenId: number, layers: readonly number[], opts: TextFromImageOptions = {}): BlockSpec {
  const runs = imageRuns(ids, imageTokenId);
  const k = opts.image ?? 0;
  if (!runs[k]) throw new KvlensUsageError(`the prompt has ${runs.length} image(s) (token id ${imageTokenId}); there is no image ${k}`);
  const past = opts.past ?? 0;
  const [start, end] = runs[k];
  const keep = opts.keys ?? (() => true);
  const queries = span(end, ids.length).filter((p) => ids[p] !== imageTokenId).map((p) => p + past);
  const keys = span(start, end).filter((p) => keep(p - start)).map((p) => p + past);
  return { layers: [...layers], queries, queriesFrom: ids.length + past, keys };
}
