// The prefix experiment (paper §5.3): the same probe on the same images with the same seed, with the image's tokens
// preceded in the user turn by no text, a correct description (class name or domain, e.g. "night highway" for
// BDD10K), a random string, or an incorrect description. Image tokens attend to the prefix (causal attention), so
// their values and keys — and the probe curves — can change; the image tower's output cannot.

import { join } from 'node:path';
import type { ImageItem } from '../extract/sources.js';
import type { ResultRow } from '../probes/results.js';
import type { PrefixResults } from '../results/schema.js';
import { Rng } from '../util/random.js';
import type { PrefixConfig } from './config.js';
import type { Timings } from './manifest.js';
import { extractStore, probeStore, taskImages } from './stores.js';

export const PREFIX_CONDITIONS = ['none', 'correct', 'random', 'incorrect'] as const;

/** Seeded nonsense words (lowercase letters, 3-8 long): a prefix with no meaning for the image. */
export function randomPrefix(seed: number, words: number): string {
  const rng = new Rng((seed ^ 0x5eed) >>> 0);
  return Array.from({ length: words }, () => Array.from({ length: 3 + rng.int(6) }, () => String.fromCharCode(97 + rng.int(26))).join('')).join(' ');
}

/** Condition -> the prefix text (without the separator). */
export function prefixTexts(cfg: Pick<PrefixConfig, 'prefixes' | 'seed' | 'randomWords'>): Record<(typeof PREFIX_CONDITIONS)[number], string> {
  return { none: '', correct: cfg.prefixes.correct, random: cfg.prefixes.random ?? randomPrefix(cfg.seed, cfg.randomWords), incorrect: cfg.prefixes.incorrect };
}

export interface PrefixRun {
  readonly result: PrefixResults;
  /** Rendered extraction prompt per condition (manifest). */
  readonly prompts: Record<string, string>;
  readonly images: number;
  readonly missing: string[];
}

export async function runPrefix(cfg: PrefixConfig, modelName: string, timings: Timings, say: (m: string) => void = () => undefined): Promise<PrefixRun> {
  const images: ImageItem[] = await timings.time('list', () => taskImages(cfg.task));
  const texts = prefixTexts(cfg);
  const storesDir = cfg.stores ?? join(cfg.out, 'stores');
  const conditions: PrefixResults['conditions'] = [];
  const prompts: Record<string, string> = {};
  const missing = new Set<string>();
  for (const name of PREFIX_CONDITIONS) {
    const prefix = texts[name] === '' ? '' : `${texts[name]}${cfg.separator}`;
    const spec = {
      model: cfg.model, out: join(storesDir, `prefix-${name}`), lmTaps: cfg.lmTaps, layers: cfg.layers, view: cfg.view, projector: false,
      dtype: cfg.dtype, device: cfg.device, resolution: cfg.resolution, prefix,
    };
    say(`prefix ${name}${prefix ? ` (${JSON.stringify(prefix)})` : ''}: extracting ${images.length} images`);
    const ex = await timings.time('extract', () => extractStore(spec, images));
    prompts[`extraction.${name}`] = ex.prompt;
    say(`prefix ${name}: probing every layer`);
    const probed = await timings.time('probe', () => probeStore(cfg.task, ex.store, spec, { model: modelName, seed: cfg.seed, threads: cfg.threads }));
    probed.missing.forEach((m) => missing.add(m));
    conditions.push({ name, prefix, rows: probed.rows.filter((r): r is ResultRow => Number.isFinite(r.value)) });
  }
  return { result: { conditions }, prompts, images: images.length, missing: [...missing] };
}
