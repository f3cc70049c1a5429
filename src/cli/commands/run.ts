// `kvlens run <experiment.yaml>`: one of the paper's experiments (flow, keys, blocking, prefix, underutil) end to end
// into a run directory with its manifest. The experiment file is the whole configuration (src/experiments/config.ts).
import { parseCommand } from '../args.js';
import { resolve } from 'node:path';
import { loadExperimentFile } from '../../experiments/config.js';
import { runExperiment } from '../../experiments/run.js';

const USAGE = `usage: kvlens run <experiment.yaml> [--out DIR] [--model DIR] [--report]

  <experiment.yaml>  experiment: flow | keys | blocking | prefix | underutil, plus its fields (docs/experiments.md;
                     examples/*.yaml). Relative paths in the file are relative to the file.
  --out DIR          run directory (overrides the file's "out"; relative to the current directory)
  --model DIR        model directory (overrides the file's "model")
  --report           also render <out>/report/report.html (kvlens report)
  --quiet            no progress lines

Writes <out>/manifest.json (model + config hash, datasets + hashes, prompts as rendered, seeds, dtype, device,
kvlens version, timings), <out>/experiment.yaml and the experiment's results/ files.`;

export default async function run(args: string[]): Promise<number> {
  const parsed = parseCommand({
    name: 'run', usage: USAGE, positionals: { min: 1, max: 1, what: 'experiment file' },
    options: { out: { type: 'string' }, model: { type: 'string' }, report: { type: 'boolean' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  }, args);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const overrides: Record<string, unknown> = {};
  if (values.out) overrides.out = resolve(values.out);
  if (values.model) overrides.model = resolve(values.model);
  const loaded = loadExperimentFile(positionals[0], overrides);
  const t0 = Date.now();
  const say = values.quiet ? undefined : (m: string) => console.error(`run: ${m}`);
  const summary = await runExperiment(loaded, { onProgress: say });
  if (values.report) {
    const { buildReport } = await import('../../report/build.js');
    const { join } = await import('node:path');
    await buildReport(summary.runDir, { out: join(summary.runDir, 'report', 'report.html') });
    summary.files.push('report/report.html');
  }
  console.log(`${summary.experiment}: wrote ${summary.files.join(', ')} under ${summary.runDir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return 0;
}
