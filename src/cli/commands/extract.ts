// `kvlens extract`: stream every layer's image-token values and keys (or other taps) of a model over an image set into
// a feature store. Thin flag parsing around extractFeatures (src/extract).

import { CliUsageError, choiceOption, intOption, numOption, parseCommand } from '../args.js';
import { ExtractionInterrupted, extractFeatures } from '../../extract/extract.js';
import { STOP_EXIT_CODES, onStopSignals } from '../../util/stop-signals.js';
import { parseExtractConfig, type ExtractConfigInput } from '../../extract/config.js';
import { Progress } from '../../util/progress.js';
import { printable } from '../../util/errors.js';

const USAGE = `usage: kvlens extract --model <hf-dir> --images <source> --out <store> [options]

  --images <source>      a directory (every .png/.jpg/.jpeg/.webp/.gif/.tif below it, sorted by path), a list file
                         (one path per line, relative to the file), or dataset:<name>:<root>[?split=val&fold=0...]
                         Image ids are the paths relative to the directory / as written in the list / under <root>.
  --taps <list>          comma-separated: values, keys, residual (over --layers) and/or hook names or patterns
                         (lm.*.attn.v, lm.3-5.resid, lm.embed, image.packed, projector.out, vision.*.out,
                         vision.post_norm, baseline.*.out, baseline.post_norm; siglip.* = old baseline names).
                         Every family: vision.* are stored on the base tile (LLaVA) or the patch grid view
                         "patches" (Qwen); projector.out on base (LLaVA) or highres (Qwen). Default: values,keys
  --layers <sel>         layers for values/keys/residual: *, 3, 3-5, 0,7,14, -10: (default *)
  --views <list>         base,highres (default both); base = the overview tile's grid, highres = the anyres grid
                         (Qwen2-VL / Qwen2.5-VL have only highres: their one native merged grid)
  --dtype <f16|f32>      on-disk dtype (default f16)
  --prefix <text>        text placed before the image in the user turn (verbatim; add your own separator)
  --question <text>      user text after the image (default none: it cannot change image-token taps, which only
                         attend to earlier positions)
  --system <text>        system turn text; --no-system leaves it out (default: the chat template's own default)
  --batch-size <n>       images per forward (default 1; on CPU 1 is as fast; the LM batches only equal-length prompts,
                         e.g. with --resolution)
  --resolution <px>      resize every image to <px> x <px> first so all images share one token layout
  --encoder-baseline <dir>  the un-finetuned encoder baseline: a vision tower checkpoint (siglip_vision_model, e.g.
                         siglip-so400m-patch14-384 for LLaVA-OneVision; clip_vision_model, e.g.
                         clip-vit-large-patch14-336 for LLaVA-NeXT) with its preprocessor_config.json, for the
                         baseline.* taps (stored in view "baseline"; siglip.* taps in view "siglip"). Qwen2-VL /
                         Qwen2.5-VL have no original encoder: any tower given is compared as a free choice
  --siglip <dir>         old name of --encoder-baseline
  --shard <i/n|auto>     this process handles shard i of n (0-based) of the list. Default auto: a SLURM array task
                         takes its shard from SLURM_ARRAY_TASK_ID/_COUNT/_MIN/_STEP, a Kubernetes Indexed Job pod from
                         JOB_COMPLETION_INDEX and KVLENS_SHARD_COUNT (or JOB_COMPLETIONS); elsewhere the whole list.
                         Give each shard its own --out, then kvlens store merge (README "Running on a cluster").
  --weights-hash <header|content>  how the model's weights enter the store identity: each safetensors file's
                         header and size (default, reads kilobytes) or every byte (reads the whole checkpoint)
  --on-error <stop|skip> an unreadable / unprocessable image stops the run (default) or is reported and skipped
  --device <cpu|cuda|webgpu>   (default cpu)
  --limit <n>            only the first n images of the list
  --max-shard-mb <n>     shard file size (default 256)
  --quiet, --no-progress no progress output
  --progress-interval <s>  seconds between progress lines when stderr is not a terminal (default 5; 0 = every image)

Rerunning the same command resumes a killed run; a store made with other settings (model, weights, image list,
shard, taps...) is refused, and so is an --out directory holding shard files but no manifest.json (nothing is deleted).
Exit status: 0 all images stored; 1 finished but some images were skipped (listed on stderr); 2 bad input, or an
image failed with --on-error stop (named in the message); 143 stopped by SIGTERM, 130 by SIGINT: the run stops at the
next image boundary, drops its unfinished shard, releases the lock, and the same command resumes (on any host).`;

export default async function extract(args: string[]): Promise<number> {
  const parsed = parseCommand({
    name: 'extract', usage: USAGE, positionals: { max: 0 },
    options: {
      model: { type: 'string' }, images: { type: 'string' }, out: { type: 'string' }, taps: { type: 'string' }, layers: { type: 'string' },
      views: { type: 'string' }, dtype: { type: 'string' }, prefix: { type: 'string' }, question: { type: 'string' }, system: { type: 'string' },
      'no-system': { type: 'boolean' }, 'batch-size': { type: 'string' }, resolution: { type: 'string' }, siglip: { type: 'string' }, 'encoder-baseline': { type: 'string' },
      shard: { type: 'string' }, 'on-error': { type: 'string' }, device: { type: 'string' }, limit: { type: 'string' },
      'max-shard-mb': { type: 'string' }, 'weights-hash': { type: 'string' }, 'no-progress': { type: 'boolean' }, quiet: { type: 'boolean' },
      'progress-interval': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  }, args);
  if (!parsed) return 0;
  const v = parsed.values;
  for (const f of ['model', 'images', 'out'] as const) if (!v[f]) throw new CliUsageError(`--${f} is required`, USAGE);
  if (v.system !== undefined && v['no-system']) throw new CliUsageError('give --system or --no-system, not both', USAGE);
  const int = (s: string | undefined, flag: string) => intOption(s, flag, USAGE, { min: 1 });
  const every = numOption(v['progress-interval'], 'progress-interval', USAGE);
  if (every !== undefined && every < 0) throw new CliUsageError(`--progress-interval: expected seconds >= 0, got "${v['progress-interval']}"`, USAGE);
  const maxShardMb = numOption(v['max-shard-mb'], 'max-shard-mb', USAGE);
  if (maxShardMb !== undefined && !(maxShardMb > 0)) throw new CliUsageError(`--max-shard-mb: expected a positive number, got "${v['max-shard-mb']}"`, USAGE);
  const quiet = v.quiet || v['no-progress'];
  choiceOption(v.dtype, 'dtype', ['f16', 'f32', 'float16', 'float32'], USAGE);
  const list = (s: string | undefined) => s?.split(',').map((x) => x.trim()).filter(Boolean);
  const dtype = v.dtype === undefined ? undefined : ({ f16: 'float16', float16: 'float16', f32: 'float32', float32: 'float32' } as Record<string, string>)[v.dtype] ?? v.dtype;
  const input: Record<string, unknown> = {
    model: v.model, images: v.images, out: v.out, taps: list(v.taps), layers: v.layers, views: list(v.views), dtype,
    prefix: v.prefix, question: v.question, systemPrompt: v['no-system'] ? null : v.system, batchSize: int(v['batch-size'], '--batch-size'),
    resolution: int(v.resolution, '--resolution'), siglip: v.siglip, encoderBaseline: v['encoder-baseline'], shard: v.shard ?? 'auto', weightsHash: choiceOption(v['weights-hash'], 'weights-hash', ['header', 'content'], USAGE),
    onError: choiceOption(v['on-error'], 'on-error', ['stop', 'skip'], USAGE), device: choiceOption(v.device, 'device', ['cpu', 'cuda', 'webgpu'], USAGE),
    limit: int(v.limit, '--limit'), maxShardBytes: maxShardMb === undefined ? undefined : Math.round(maxShardMb * 2 ** 20),
  };
  for (const k of Object.keys(input)) if (input[k] === undefined) delete input[k];
  const cfg = parseExtractConfig(input as ExtractConfigInput);

  let progress: Progress | undefined;
  const stop = onStopSignals((m) => console.error(`extract: ${m}`));
  let summary;
  try {
    summary = await extractFeatures(cfg, {
      signal: stop.signal,
      onStart: ({ total, alreadyStored, taps }) => {
        console.error(`extract: ${total} images (${alreadyStored} already stored), ${taps.length} taps -> ${cfg.out}`);
        if (!quiet) progress = new Progress({ total, label: 'extract', ...(every !== undefined ? { intervalMs: every * 1000 } : {}) });
      },
      onImage: (e) => {
        if (e.status === 'skipped') (progress ? progress.log.bind(progress) : console.error)(`skipped ${printable(e.id)}: ${e.error}`);
        progress?.tick(1, { skipped: e.status === 'skipped', cached: e.status === 'present' });
      },
    });
  } catch (e) {
    if (!(e instanceof ExtractionInterrupted)) throw e;
    progress?.done();
    const sig = stop.received() ?? 'SIGTERM';
    console.error(`extract: ${e.message} (exit ${STOP_EXIT_CODES[sig]})`);
    return STOP_EXIT_CODES[sig];
  } finally {
    stop.dispose();
  }
  progress?.done();
  console.error(`extract: added ${summary.added}, already stored ${summary.alreadyStored}, skipped ${summary.skipped.length} of ${summary.selected}` +
    ` (shard ${summary.shard.index}/${summary.shard.count})`);
  for (const s of summary.skipped) console.error(`  skipped ${printable(s.id)} (${printable(s.source)}): ${s.error}`);
  return summary.skipped.length ? 1 : 0;
}
