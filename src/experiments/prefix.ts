// The prefix experiment (paper §5.3): the same probe on the same images with the same seed, with the image's tokens
// preceded in the user turn by no text, a correct description (the image's class name, or a domain such as "night
// highway" for BDD10K), a random string, or an incorrect description (another class's name). Image tokens attend to
// the prefix (causal attention), so their values and keys — and the probe curves — can change; the image tower's
// output cannot.
//
// A condition is either one literal text for every image, or a keyword (class-name, domain, other-class,
// seeded-words) that gives each image its own text: the config's template with {class} filled in from the dataset's
// labels. Per-image texts reach the extractor on each ImageItem; the store records them per image.
//
// No extraction is done twice: a condition whose text before the image equals an earlier condition's for every image
// takes that condition's store and rows (same tokens, same seed: same numbers), and a literal condition ("none")
// whose store another run already extracted into the stores folder (the flow over the same task, images, layers and
// view) reads that store (src/experiments/store-reuse.ts); `stores/prefix-<condition>` is then a link to it.

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { sha256File } from '../extract/engine.js';
import type { ImageItem } from '../extract/sources.js';
import { loadProcessor } from '../preprocess/load.js';
import { imageProcessorFileOf } from '../preprocess/processor.js';
import { FeatureStore } from '../store/index.js';
import type { ResultRow } from '../probes/results.js';
import type { PrefixResults } from '../results/schema.js';
import { renderPrompt } from '../tokenizer/prompt.js';
import { KvlensInputError } from '../util/errors.js';
import { Rng } from '../util/random.js';
import type { PrefixConfig } from './config.js';
import type { Timings } from './manifest.js';
import { resolveView } from './model.js';
import { taskLabels, type TaskLabels } from './prefix-labels.js';
import { linkAt, reuseStore } from './store-reuse.js';
import { extractStore, probeStore, taskImages } from './stores.js';

export const PREFIX_CONDITIONS = ['none', 'correct', 'random', 'incorrect'] as const;
export type PrefixCondition = (typeof PREFIX_CONDITIONS)[number];

/** Keywords that make a condition per-image; anything else is a literal prefix. */
export const PREFIX_KEYWORDS = { correct: ['class-name', 'domain'], incorrect: ['other-class'], random: ['seeded-words'] } as const;

/** Seeded nonsense words (lowercase letters, 3-8 long): a prefix with no meaning for the image. */
export function randomPrefix(seed: number, words: number): string {
  const rng = new Rng((seed ^ 0x5eed) >>> 0);
  return Array.from({ length: words }, () => Array.from({ length: 3 + rng.int(6) }, () => String.fromCharCode(97 + rng.int(26))).join('')).join(' ');
}

/** A 32-bit number from the run seed and an image id, so an image's random choices do not depend on list order. */
export function imageSeed(seed: number, imageId: string): number {
  return createHash('sha256').update(`${seed}\u0000${imageId}`).digest().readUInt32LE(0);
}

type PrefixSpec = PrefixConfig['prefixes'];

const isKeyword = (cond: Exclude<PrefixCondition, 'none'>, text: string) => (PREFIX_KEYWORDS[cond] as readonly string[]).includes(text);

/** Whether any condition needs the dataset's per-image class names. */
export const needsLabels = (p: PrefixSpec) => p.correct === 'class-name' || p.incorrect === 'other-class';

/**
 * The prefix text (without the separator) of one condition for one image. `labels` holds the image's class names
 * and the vocabulary (needed for class-name / other-class only).
 */
export function prefixFor(cond: PrefixCondition, imageId: string, p: PrefixSpec, opts: { seed: number; randomWords: number; labels?: TaskLabels }): string {
  if (cond === 'none') return '';
  const text = p[cond];
  if (!isKeyword(cond, text)) return text;
  const fill = (words: string) => p.template.replaceAll('{class}', words);
  const own = () => {
    const names = opts.labels?.byImage.get(imageId);
    if (!names?.length) throw new KvlensInputError(`image "${imageId}" has no class label in the dataset, so it has no ${cond} prefix`, `prefixes.${cond}`);
    return names;
  };
  switch (text) {
    case 'class-name': return fill(own().join(' and '));
    case 'domain': return fill(p.domain!);
    case 'other-class': {
      const mine = new Set(own());
      const others = opts.labels!.vocabulary.filter((n) => !mine.has(n));
      if (!others.length) throw new KvlensInputError(`image "${imageId}": every class of the vocabulary is in the image, no other class is left`, 'prefixes.incorrect');
      return fill(others[new Rng(imageSeed(opts.seed, imageId)).int(others.length)]);
    }
    default: return fill(randomPrefix(imageSeed(opts.seed, imageId), opts.randomWords)); // seeded-words
  }
}

/** How a condition's texts are made (the store's perImage rule and the results' `prefix` field); undefined for a literal. */
export function perImageRule(cond: Exclude<PrefixCondition, 'none'>, cfg: Pick<PrefixConfig, 'prefixes' | 'separator' | 'randomWords' | 'seed'>): string | undefined {
  const text = cfg.prefixes[cond];
  if (!isKeyword(cond, text)) return undefined;
  const what = text === 'domain' ? `domain ${JSON.stringify(cfg.prefixes.domain)}` : text === 'seeded-words' ? `${cfg.randomWords} seeded words (seed ${cfg.seed} + image id)` : text;
  return `${cond}: ${what} in ${JSON.stringify(cfg.prefixes.template)}, separator ${JSON.stringify(cfg.separator)}`;
}

export interface PrefixRun {
  readonly result: PrefixResults;
  /** Rendered extraction prompt per condition, and per image for per-image conditions (manifest). */
  readonly prompts: Record<string, string>;
  readonly images: number;
  readonly missing: string[];
  /** Images skipped under onError: skip ("condition: id: error"). */
  readonly skipped: string[];
  /** Stores extracted by this run (at most one per condition). */
  readonly extractions: number;
  /** Conditions that read a store already there instead of extracting ("condition: where from"). */
  readonly reused: string[];
}

export async function runPrefix(cfg: PrefixConfig, modelName: string, timings: Timings, say: (m: string) => void = () => undefined): Promise<PrefixRun> {
  const images: ImageItem[] = await timings.time('list', () => taskImages(cfg.task));
  const labels = needsLabels(cfg.prefixes) ? await timings.time('list', () => taskLabels(cfg.task, { classNames: cfg.prefixes.classNames })) : undefined;
  const proc = await loadProcessor(cfg.model);
  const render = (prefix: string) => renderPrompt({ question: '', prefix }, 1, proc.template, proc.tokenizer);
  const imageProcessorSha256 = sha256File(imageProcessorFileOf(proc.sources, cfg.model));
  const storesDir = cfg.stores ?? join(cfg.out, 'stores');
  const view = resolveView(cfg.model, cfg.view);
  const conditions: PrefixResults['conditions'] = [];
  const prompts: Record<string, string> = {};
  const missing = new Set<string>();
  const skipped: string[] = [];
  const withSep = (t: string) => (t === '' ? '' : `${t}${cfg.separator}`);
  const done: { name: PrefixCondition; texts: string[]; store: string; prompt: string; rows: ResultRow[]; skipped: string[] }[] = [];
  const reused: string[] = [];
  let extractions = 0;
  for (const name of PREFIX_CONDITIONS) {
    const rule = name === 'none' ? undefined : perImageRule(name, cfg);
    // Literal: one prefix for the store. Per-image: every item carries its own text, the rule is the store's identity.
    const items = rule === undefined ? images : images.map((it) => ({ ...it, prefix: withSep(prefixFor(name, it.id, cfg.prefixes, { seed: cfg.seed, randomWords: cfg.randomWords, labels })) }));
    const prefix = rule === undefined ? withSep(prefixFor(name, '', cfg.prefixes, cfg)) : withSep(cfg.prefixes.template);
    const spec = {
      model: cfg.model, out: join(storesDir, `prefix-${name}`), lmTaps: cfg.lmTaps, layers: cfg.layers, view, projector: false,
      dtype: cfg.dtype, device: cfg.device, resolution: cfg.resolution, onError: cfg.onError, ...(rule === undefined ? { prefix } : { perImagePrefix: rule }),
    };
    // The text before each image: equal texts give equal tokens, so an earlier condition's store and rows serve.
    const texts = items.map((it) => it.prefix ?? prefix);
    const same = done.find((d) => d.texts.every((t, i) => t === texts[i]));
    if (same) {
      say(`prefix ${name}: the same text before every image as ${same.name}; its store and rows are reused`);
      linkAt(spec.out, same.store);
      reused.push(`${name}: the store and rows of ${same.name} (the same text before every image)`);
      skipped.push(...same.skipped.map((s) => `prefix ${name}: ${s}`));
      if (rule === undefined) prompts[`extraction.${name}`] = same.prompt;
      else {
        prompts[`extraction.${name}`] = render(prefix);
        for (const it of items) prompts[`extraction.${name}.${it.id}`] = render(it.prefix ?? '');
      }
      conditions.push({ name, prefix: rule === undefined ? prefix : `per image: ${prefix}`, rows: same.rows });
      done.push({ ...same, name, texts });
      continue;
    }
    const donor = rule === undefined ? reuseStore(storesDir, spec, images, { template: render(prefix), imageProcessorSha256 }) : undefined;
    let ex: Awaited<ReturnType<typeof extractStore>>;
    if (donor) {
      say(`prefix ${name}: ${donor} already holds these features; not extracting again`);
      reused.push(`${name}: the store ${donor} (same model, images, prompt, layers and view)`);
      const st = FeatureStore.open(donor);
      try {
        ex = { store: donor, prompt: st.identity.prompt.template, images: st.images().length, skipped: [] };
      } finally {
        st.close();
      }
    } else {
      say(`prefix ${name}${rule ? ` (${rule})` : prefix ? ` (${JSON.stringify(prefix)})` : ''}: extracting ${images.length} images`);
      ex = await timings.time('extract', () => extractStore(spec, items));
      extractions++;
    }
    const ownSkipped = ex.skipped.map((s) => `prefix ${name}: ${s}`);
    skipped.push(...ownSkipped);
    if (rule === undefined) prompts[`extraction.${name}`] = ex.prompt;
    else {
      prompts[`extraction.${name}`] = render(prefix); // the template, {class} unfilled
      for (const it of items) prompts[`extraction.${name}.${it.id}`] = render(it.prefix ?? '');
    }
    say(`prefix ${name}: probing every layer`);
    const probed = await timings.time('probe', () => probeStore(cfg.task, ex.store, spec, { model: modelName, seed: cfg.seed, threads: cfg.threads }));
    probed.missing.forEach((m) => missing.add(m));
    const rows = probed.rows.filter((r): r is ResultRow => Number.isFinite(r.value));
    conditions.push({ name, prefix: rule === undefined ? prefix : `per image: ${prefix}`, rows });
    done.push({ name, texts, store: ex.store, prompt: ex.prompt, rows, skipped: ex.skipped });
  }
  return { result: { conditions }, prompts, images: images.length, missing: [...missing], skipped, extractions, reused };
}
