// Finding a feature store that already holds what an extraction would write, so an experiment does not extract it
// again: the prefix experiment's "none" condition extracts the same numbers as a flow run over the same task (same
// model, images, prompt, resolution, dtype, view, layers), which the suite runs first into the same stores folder.
//
// A store qualifies only when every input of the stored numbers is equal: model identity (path, config, weights),
// prompt as rendered (prefix and chat template), image-processor settings file, resolution and batch size (processor
// identity), dtype, the view among its views, exactly the
// requested layers for each requested LM tap kind (other taps and views may be there too: they do not change these
// numbers, and the probes read only the requested ones), exactly the same image ids, complete and not being written.

import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseExtractConfig, TAP_SHORTHANDS } from '../extract/config.js';
import type { ImageItem } from '../extract/sources.js';
import { FeatureStore, LOCK_FILE, modelIdentity } from '../store/index.js';
import { selectLayers } from '../taps/names.js';
import { ensureDir } from '../util/dirs.js';
import { modelEntry } from './manifest.js';
import type { StoreSpec } from './stores.js';

/** What the extraction would record that the spec alone does not say: its rendered prompt and processor settings file. */
export interface ExpectedInputs {
  /** The prompt as the extractor renders it (one image placeholder), the store's prompt.template. */
  readonly template: string;
  /** sha256 of the image-processor settings file, the store's processor.imageProcessorSha256. */
  readonly imageProcessorSha256: string;
}

/** Why `dir` cannot stand in for extracting `spec` over `images`, or null when it can. */
export function storeMismatch(dir: string, spec: StoreSpec, images: readonly ImageItem[], expect: ExpectedInputs): string | null {
  if (spec.perImagePrefix !== undefined || spec.projector || spec.encoder) return 'only plain LM-tap extractions with one literal prefix are shared';
  if (!existsSync(join(dir, 'manifest.json'))) return 'no store';
  if (existsSync(join(dir, LOCK_FILE))) return 'a writer holds it';
  let store: FeatureStore;
  try {
    store = FeatureStore.open(dir);
  } catch {
    return 'not a readable store';
  }
  try {
    const cfg = parseExtractConfig({
      model: spec.model, images: 'listed', out: spec.out, taps: [...spec.lmTaps], layers: spec.layers, views: [spec.view], dtype: spec.dtype,
      device: spec.device, prefix: spec.prefix ?? '', ...(spec.resolution ? { resolution: spec.resolution } : {}),
    });
    const id = store.identity;
    if (!isDeepStrictEqual(id.model, modelIdentity(cfg.model, cfg.weightsHash))) return 'another model';
    if (id.prompt.prefix !== cfg.prefix || id.prompt.perImage !== undefined) return 'another prompt prefix';
    if (id.prompt.template !== expect.template) return 'another rendered prompt (chat template)';
    if (id.processor.imageProcessorSha256 !== expect.imageProcessorSha256) return 'another image-processor settings file';
    if (id.dtype !== cfg.dtype) return `dtype ${id.dtype}`;
    if (!id.views.includes(spec.view)) return `no ${spec.view} view`;
    if ((id.processor.resolution ?? null) !== (cfg.resolution ?? null) || id.processor.batchSize !== cfg.batchSize) return 'another resolution or batch size';
    const layers = selectLayers(cfg.layers, modelEntry(cfg.model, '').lmLayers);
    for (const t of spec.lmTaps) if (!isDeepStrictEqual(store.layers(TAP_SHORTHANDS[t]), layers)) return `other ${t} layers`;
    if (store.missing().length || store.coverageProblems().length) return 'incomplete';
    const have = store.images();
    if (have.length !== images.length || !images.every((it) => store.has(it.id))) return 'other images';
    if (have.some((i) => store.image(i).prefix !== undefined)) return 'per-image prefixes';
    return null;
  } catch (e) {
    return (e as Error).message;
  } finally {
    store.close();
  }
}

/** A store folder under `storesDir` (not `spec.out`, not a link) that can stand in for extracting `spec` over `images`. */
export function findReusableStore(storesDir: string, spec: StoreSpec, images: readonly ImageItem[], expect: ExpectedInputs): string | undefined {
  if (!existsSync(storesDir)) return undefined;
  const own = resolve(spec.out);
  for (const name of readdirSync(storesDir).sort()) {
    const dir = resolve(storesDir, name);
    if (dir === own || lstatSync(dir).isSymbolicLink()) continue;
    if (storeMismatch(dir, spec, images, expect) === null) return dir;
  }
  return undefined;
}

/**
 * Where `spec` will be read from: a store already there that stands in for it, linked at `spec.out` (a relative
 * symlink, so the stores folder keeps one entry per condition), or undefined to extract into `spec.out` as usual.
 * A real folder at `spec.out` is never replaced (it is extracted into / resumed as before); a link left there by an
 * earlier run is kept while its target still qualifies and otherwise removed (only the link) before extracting.
 */
export function reuseStore(storesDir: string, spec: StoreSpec, images: readonly ImageItem[], expect: ExpectedInputs): string | undefined {
  const out = resolve(spec.out);
  if (isLink(out)) {
    const target = resolve(dirname(out), readlinkSync(out));
    if (storeMismatch(target, spec, images, expect) === null) return target;
    unlinkSync(out);
  } else if (existsSync(out)) return undefined;
  const found = findReusableStore(storesDir, spec, images, expect);
  if (found !== undefined) linkAt(out, found);
  return found;
}

/** Link `out` to `target` when nothing is at `out` (a condition whose numbers equal another condition's). */
export function linkAt(out: string, target: string): void {
  if (existsSync(out) || isLink(out)) return;
  ensureDir(dirname(out));
  symlinkSync(relative(dirname(out), realpathSync(target)), out, 'dir');
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
