// `kvlens run <experiment.yaml>`: one of the paper's experiments (flow, keys, blocking, prefix, underutil) end to end
// into a run directory with its manifest. The experiment file is the whole configuration (src/experiments/config.ts).
import { choiceOption, CliUsageError, numOption, parseCommand } from '../args.js';
import { progressPrinter, withProgress } from '../../util/progress.js';
import { resolve } from 'node:path';
import { loadExperimentFile } from '../../experiments/config.js';
import { runExperiment } from '../../experiments/run.js';

const USAGE = `usage: kvlens run <experiment.yaml> [--out DIR] [--model DIR] [--report]

  <experiment.yaml>  experiment: flow | keys | blocking | prefix | underutil, plus its fields (docs/experiments.md;
                     examples/*.yaml). Relative paths in the file are relative to the file.
  --out DIR          run directory (overrides the file's "out"; relative to the current directory)
  --model DIR        model directory (overrides the file's "model")
  --report           also render <out>/report/report.html (kvlens report)
  --on-error <stop|skip>  an image that cannot be read or processed while extracting (flow, prefix) stops the run
                     (default; the file's "onError") or is skipped, listed and the exit status is 1
  --quiet            no progress lines
  --shard            refused: an experiment needs every image and its results cannot be merged. kvlens run never
                     reads SLURM_ARRAY_* / JOB_COMPLETION_INDEX: in a job array each task runs a whole experiment
                     (give each task its own file or --out); shard feature extraction with kvlens extract --shard
  --progress-interval <s>  seconds between progress lines when stderr is not a terminal (default 5)

Progress (stderr): every long step (extraction, probe taps, key variance, blocking and under-utilisation questions)
as count/total, rate and ETA: a bar on a terminal, a plain line every few seconds in logs (Slurm). Rerunning
resumes; resumed images do not count in the rate.

Writes <out>/manifest.json (model + config hash, datasets + hashes, prompts as rendered, seeds, dtype, device,
kvlens version, timings), <out>/experiment.yaml and the experiment's results/ files, and pictures for kvlens view
and the report (the file's "pictures: {images: 4, questions: 2}"; 0 turns a kind off): flow probe masks + ground
truth and text->image attention in masks/ and attention/, blocking/underutil attention for sampled questions,
keys variance maps, sample PNGs in samples/ (docs/experiments.md).`;

export default async function run(args: string[]): Promise<number> {
  const parsed = parseCommand({
    name: 'run', usage: USAGE, positionals: { min: 1, max: 1, what: 'experiment file' },
    options: { shard: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' }, report: { type: 'boolean' }, quiet: { type: 'boolean' }, 'on-error': { type: 'string' },
      'progress-interval': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  }, args);
  if (!parsed) return 0;
  if (parsed.values.shard !== undefined) throw new CliUsageError("--shard: kvlens run does not shard: an experiment's probes need every image and its results cannot be merged. For an array over seeds or configs, give each task its own experiment file or --out (a whole run per task; kvlens run never reads SLURM_ARRAY_* or JOB_COMPLETION_INDEX). To spread feature extraction over a cluster, use kvlens extract --shard + kvlens store merge (README \"Running on a cluster\")", USAGE);
  const { values, positionals } = parsed;
  const overrides: Record<string, unknown> = {};
  if (values.out) overrides.out = resolve(values.out);
  if (values.model) overrides.model = resolve(values.model);
  const onError = choiceOption(values['on-error'], 'on-error', ['stop', 'skip'], USAGE);
  if (onError) overrides.onError = onError;
  const loaded = loadExperimentFile(positionals[0], overrides);
  const t0 = Date.now();
  const every = numOption(values['progress-interval'], 'progress-interval', USAGE);
  if (every !== undefined && every < 0) throw new CliUsageError(`--progress-interval: expected seconds >= 0, got "${values['progress-interval']}"`, USAGE);
  const printer = progressPrinter({ quiet: values.quiet, prefix: 'run: ', ...(every !== undefined ? { intervalMs: every * 1000 } : {}) });
  const summary = await withProgress(printer.onProgress, async () => {
    const s = await runExperiment(loaded, { onProgress: printer.say });
    if (values.report) {
      const { buildReport } = await import('../../report/build.js');
      const { join } = await import('node:path');
      await buildReport(s.runDir, { out: join(s.runDir, 'report', 'report.html') });
      s.files.push('report/report.html');
    }
    return s;
  }).finally(() => printer.finish());
  console.log(`${summary.experiment}: wrote ${summary.files.join(', ')} under ${summary.runDir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (summary.skipped.length) {
    console.error(`run: ${summary.skipped.length} image(s) were skipped (--on-error skip); the results leave them out:`);
    for (const s of summary.skipped) console.error(`  ${s}`);
    return 1;
  }
  return 0;
}
