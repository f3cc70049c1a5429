// `kvlens demo [--out demo-run/] [--seed N]`: tiny embedded model + synthetic data -> every experiment (flow, keys,
// blocking, prefix, underutil; src/experiments/suite.ts) -> one run directory -> one HTML report. Offline, about two
// minutes on 2 cores, for each family of the suite (--family). --flow-only runs the layer-wise flow alone.
import { CliUsageError, choiceOption, intOption, parseCommand } from '../args.js';
import { progressPrinter, withProgress } from '../../util/progress.js';
import { DEMO_FAMILIES, runDemo, type DemoFamily } from '../../experiments/demo.js';
import { runSuite, SUITE_FAMILIES } from '../../experiments/suite.js';

const USAGE = `usage: kvlens demo [--out DIR] [--family F] [--seed N] [--images N] [--pairs N] [--threads N] [--flow-only] [--quiet]
  --family   tiny model: ${Object.keys(DEMO_FAMILIES).join(' | ')} (default llava_onevision); all five experiments run on each
  --flow-only  the layer-wise flow alone (flow, keys, blocking, prefix, underutil otherwise)
  --out      output folder (default demo-run/): model/, data/, stores/, run/ (run directory + report/report.html)
  --seed     seed of the synthetic data and the episode sampling (default 0)
  --images   synthetic Pascal-5i images (default 24)
  --pairs    synthetic SPair pairs (default 10)
  --threads  probe worker threads (default: all cores)
  --shard    refused: the demo never shards (nor reads SLURM_ARRAY_* / JOB_COMPLETION_INDEX); one whole demo per job`;

const positiveInt = (v: string | undefined, flag: string) => intOption(v, flag, USAGE, { min: 1 });

export default async function demo(args: string[]): Promise<number> {
  const parsed = parseCommand({
    name: 'demo', usage: USAGE, positionals: { max: 0 },
    options: {
      shard: { type: 'string' },
      out: { type: 'string' }, family: { type: 'string' }, seed: { type: 'string' }, images: { type: 'string' }, pairs: { type: 'string' }, threads: { type: 'string' },
      quiet: { type: 'boolean' }, 'flow-only': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  }, args);
  if (!parsed) return 0;
  if (parsed.values.shard !== undefined) throw new CliUsageError("--shard: kvlens demo does not shard: the demo's probes need every image and its results cannot be merged. For an array over seeds or configs, give each task its own experiment file or --out (a whole run per task; kvlens demo never reads SLURM_ARRAY_* or JOB_COMPLETION_INDEX). To spread feature extraction over a cluster, use kvlens extract --shard + kvlens store merge (README \"Running on a cluster\")", USAGE);
  const { values } = parsed;
  const seed = intOption(values.seed, 'seed', USAGE) ?? 0;
  const family = choiceOption(values.family, 'family', Object.keys(DEMO_FAMILIES), USAGE) ?? 'llava_onevision';
  const t0 = Date.now();
  // Step messages, and count/total/ETA lines for the long steps inside (extraction, probe taps, key variance, plots).
  const printer = progressPrinter({ quiet: values.quiet, prefix: 'demo: ' });
  const progress = values.quiet ? undefined : (m: string) => printer.say(`${m} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (!values['flow-only'] && family in SUITE_FAMILIES) {
    const suite = await withProgress(printer.onProgress, () => runSuite({
      out: values.out ?? 'demo-run', family: family as keyof typeof SUITE_FAMILIES, seed, threads: positiveInt(values.threads, '--threads'),
      sizes: { pascal5i: positiveInt(values.images, '--images'), spair: positiveInt(values.pairs, '--pairs') }, onProgress: progress,
    })).finally(() => printer.finish());
    console.log(`run directory: ${suite.runDir} (${Object.keys(suite.seconds).filter((k) => !['model', 'data', 'report'].includes(k)).join(', ')})`);
    console.log(`report: ${suite.report.html}`);
    console.log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  }
  const summary = await withProgress(printer.onProgress, () => runDemo({
    out: values.out ?? 'demo-run',
    family: family as DemoFamily,
    seed,
    segImages: positiveInt(values.images, '--images'),
    pairs: positiveInt(values.pairs, '--pairs'),
    threads: positiveInt(values.threads, '--threads'),
    onProgress: progress,
  })).finally(() => printer.finish());
  console.log(`run directory: ${summary.runDir} (${summary.rows.length} result rows)`);
  console.log(`report: ${summary.report.html}`);
  console.log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return 0;
}
