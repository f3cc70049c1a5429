// extractFeatures(config): the ordered image list -> this shard's images -> per batch: decode + preprocess, run the
// model with the requested taps, hand each image's tensors and token map to the store writer, drop them. Memory holds
// one batch's activations at most; the store streams to disk and resumes after a crash.
//
// Determinism (so a killed run, rerun, gives the same bytes): batches are fixed chunks of this shard's list; a chunk
// with any image missing from the store runs whole (already stored images are computed but not added again), so every
// image is always computed in the same company. With --on-error stop, the run aborts the writer (the open shard is
// dropped and redone next time) rather than closing a shard at a data-dependent boundary.

import { basename } from 'node:path';
import { listIdentity, resolveShard, selectShard } from '../store/selection.js';
import { imageIdProblem, StoreWriter, type WriterEvent } from '../store/writer.js';
import type { StoreIdentity } from '../store/format.js';
import { modelIdentity } from '../store/provenance.js';
import { KvlensInputError, printable } from '../util/errors.js';
import { reportProgress } from '../util/progress.js';
import { parseExtractConfig, type ExtractConfig, type ExtractConfigInput } from './config.js';
import { openExtractor, type PreparedImage } from './engine.js';
import { listImages, type ImageItem } from './sources.js';

export interface SkippedImage {
  readonly id: string;
  readonly source: string;
  readonly error: string;
}

export interface ExtractSummary {
  readonly store: string;
  readonly shard: { readonly index: number; readonly count: number };
  /** images in this shard of the list */
  readonly selected: number;
  /** added by this run */
  readonly added: number;
  /** already in the store when the run started */
  readonly alreadyStored: number;
  readonly skipped: readonly SkippedImage[];
  readonly taps: readonly string[];
}

export interface ExtractHooks {
  /** Called once the list is known and before any image runs. */
  readonly onStart?: (info: { total: number; alreadyStored: number; taps: readonly string[] }) => void;
  /** Called after each image (stored, already present, or skipped). */
  readonly onImage?: (e: { id: string; status: 'added' | 'present' | 'skipped'; error?: string }) => void;
  readonly onWriterEvent?: (e: WriterEvent) => void;
  /** Environment for SLURM / indexed-job shard resolution (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Pre-built image list (tests, experiments); default: listImages(config.images). */
  readonly images?: readonly ImageItem[];
  /**
   * Stop request (SIGTERM/SIGINT in the CLI): checked at every image boundary; the run then drops its open shard
   * (redone by the next run, so the result stays byte-identical), releases the lock and throws ExtractionInterrupted.
   */
  readonly signal?: AbortSignal;
}

/** An image failed and the run stops (--on-error stop), or the store could not be written; names the image. */
export class ExtractionStopped extends KvlensInputError {}

/** The run was asked to stop (hooks.signal) and stopped cleanly at an image boundary; rerun to resume. */
export class ExtractionInterrupted extends Error {
  override readonly name = 'ExtractionInterrupted';
  constructor(readonly reason: unknown, readonly stored: number) {
    super(`stopped at an image boundary (${String(reason ?? 'aborted')}); ${stored} images are in finalised shards, the open shard was dropped; ` +
      'rerun the same command to resume');
  }
}

/** The caller's hooks, plus each image reported on the progress channel (util/progress) as step "extract <store>". */
function reportingHooks(hooks: ExtractHooks, step: string): ExtractHooks {
  let total = 0;
  const n = { done: 0, cached: 0, skipped: 0 };
  return {
    ...hooks,
    onStart: (info) => {
      total = info.total;
      hooks.onStart?.(info);
      reportProgress({ step, done: 0, total, unit: 'images' });
    },
    onImage: (e) => {
      n.done++;
      if (e.status === 'present') n.cached++;
      if (e.status === 'skipped') n.skipped++;
      hooks.onImage?.(e);
      reportProgress({ step, done: n.done, total, unit: 'images', cached: n.cached, skipped: n.skipped });
    },
  };
}

export async function extractFeatures(input: ExtractConfigInput | ExtractConfig, callerHooks: ExtractHooks = {}): Promise<ExtractSummary> {
  const cfg = parseExtractConfig(input);
  const hooks = reportingHooks(callerHooks, `extract ${basename(cfg.out)}`);
  const selection = resolveShard({ shard: cfg.shard }, hooks.env ?? process.env);
  let all = hooks.images ? [...hooks.images] : await listImages(cfg.images);
  if (cfg.limit !== undefined) all = all.slice(0, cfg.limit);
  const mine = selectShard(all, selection);
  checkPerImagePrefixes(cfg, mine);
  // An id the store cannot hold (a newline in a file name) stops the run here, before the model loads, or is skipped
  // in the loop below (--on-error skip); it used to reach the writer and stop every run as "writing ... failed".
  if (cfg.onError === 'stop') {
    const bad = mine.find((it) => imageIdProblem(it.id));
    if (bad) fail(cfg, bad, new Error(imageIdProblem(bad.id)!), [], hooks);
  }

  const engine = await openExtractor(cfg);
  let writer: StoreWriter | undefined;
  const skipped: SkippedImage[] = [];
  let added = 0;
  try {
    const identity: StoreIdentity = {
      model: modelIdentity(cfg.model, cfg.weightsHash),
      processor: engine.processorIdentity(),
      prompt: { template: engine.promptTemplate(), prefix: cfg.prefix, ...(cfg.perImagePrefix !== undefined ? { perImage: cfg.perImagePrefix } : {}) },
      taps: engine.plan.all,
      dtype: cfg.dtype,
      views: engine.views,
    };
    writer = StoreWriter.open(cfg.out, {
      identity, selection, list: listIdentity(all.map((it) => it.id)), maxShardBytes: cfg.maxShardBytes, maxImagesPerShard: cfg.maxImagesPerShard ?? null, onEvent: hooks.onWriterEvent,
    });
    const alreadyStored = mine.filter((it) => writer!.has(it.id)).length;
    hooks.onStart?.({ total: mine.length, alreadyStored, taps: engine.plan.all });

    for (let b0 = 0; b0 < mine.length; b0 += cfg.batchSize) {
      if (hooks.signal?.aborted) throw new ExtractionInterrupted(hooks.signal.reason, writer.storedImages);
      const chunk = mine.slice(b0, b0 + cfg.batchSize);
      if (chunk.every((it) => writer!.has(it.id))) {
        for (const it of chunk) hooks.onImage?.({ id: it.id, status: 'present' });
        continue;
      }
      const ready: Array<{ item: ImageItem; prepared: PreparedImage }> = [];
      for (const item of chunk) {
        const badId = imageIdProblem(item.id);
        if (badId) {
          fail(cfg, item, new Error(badId), skipped, hooks);
          continue;
        }
        try {
          ready.push({ item, prepared: await engine.prepare(await item.load(), item.prefix) });
        } catch (e) {
          fail(cfg, item, e, skipped, hooks);
        }
      }
      if (ready.length === 0) continue;
      let outputs;
      try {
        outputs = await engine.run(ready.map((r) => r.prepared));
      } catch (e) {
        // A model failure on a batch: every image in it is reported (with batch size 1, the one image).
        for (const r of ready) fail(cfg, r.item, e, skipped, hooks);
        continue;
      }
      ready.forEach((r, i) => {
        if (writer!.has(r.item.id)) {
          hooks.onImage?.({ id: r.item.id, status: 'present' });
          return;
        }
        try {
          writer!.add(r.item.id, {
            source: r.item.source, originalSize: r.prepared.originalSize, views: r.prepared.views,
            ...(r.item.prefix !== undefined ? { prefix: r.item.prefix } : {}),
          }, outputs[i]);
        } catch (e) {
          // Writing failed (disk full, I/O error): the writer is now unusable, so the run stops whatever --on-error says.
          throw new ExtractionStopped(`writing image ${shown(r.item.id)} (${shown(r.item.source, false)}) to the store failed: ${message(e)}. ` +
            'Finalised shards are intact; fix the cause and rerun the same command to resume', cfg.out);
        }
        added++;
        hooks.onImage?.({ id: r.item.id, status: 'added' });
      });
    }
    writer.close();
    return { store: cfg.out, shard: selection, selected: mine.length, added, alreadyStored, skipped, taps: engine.plan.all };
  } catch (e) {
    writer?.abort();
    throw e;
  } finally {
    await engine.dispose();
  }
}

/** Per-image prefixes come with a rule in the config (the store identity) and on every image, or not at all. */
function checkPerImagePrefixes(cfg: ExtractConfig, items: readonly ImageItem[]): void {
  const perImage = cfg.perImagePrefix !== undefined;
  const bad = items.find((it) => (it.prefix !== undefined) !== perImage);
  if (!bad) return;
  throw new KvlensInputError(perImage
    ? `perImagePrefix is set but image "${bad.id}" carries no prefix of its own`
    : `image "${bad.id}" carries its own prefix; set perImagePrefix (how the prefixes were derived) so the store records it`, cfg.out);
}

function fail(cfg: ExtractConfig, item: ImageItem, e: unknown, skipped: SkippedImage[], hooks: ExtractHooks): void {
  const error = message(e);
  if (cfg.onError === 'stop') {
    throw new ExtractionStopped(`image ${shown(item.id)} (${shown(item.source, false)}) failed: ${error}. Stopped (--on-error stop); ` +
      'fix or remove the image, or pass --on-error skip, and rerun to resume', cfg.images);
  }
  skipped.push({ id: item.id, source: item.source, error });
  hooks.onImage?.({ id: item.id, status: 'skipped', error });
}

/** A name for a message: quoted (an id), JSON-escaped whenever it holds control characters so one line stays one line. */
function shown(name: string, quote = true): string {
  return quote ? JSON.stringify(name) : printable(name);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
