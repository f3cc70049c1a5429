// `kvlens report <run-dir> [--out report.html]`: render a run directory (docs/run-dir.md) into one self-contained HTML
// report plus every plot as SVG and PNG under <out-dir>/plots/.
import { CliUsageError, numOption, parseCommand } from '../args.js';
import { join, resolve } from 'node:path';
import { buildReport } from '../../report/build.js';
import { progressPrinter, withProgress } from '../../util/progress.js';

const USAGE = `usage: kvlens report <run-dir> [--out FILE.html] [--png-scale N] [--quiet]
  --out        output HTML (default <run-dir>/report/report.html); plots go to <out-dir>/plots/
  --png-scale  PNG copies at N x the SVG size (default 2)
  --quiet      no progress messages on stderr`;

export default async function report(args: string[]): Promise<number> {
  const parsed = parseCommand({
    name: 'report', usage: USAGE, positionals: { min: 1, max: 1, what: 'run directory' },
    options: { out: { type: 'string' }, 'png-scale': { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  }, args);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const runDir = resolve(positionals[0]);
  const scale = numOption(values['png-scale'], 'png-scale', USAGE) ?? 2;
  if (!(scale > 0 && scale <= 8)) throw new CliUsageError(`--png-scale: expected a number in (0, 8], got "${values['png-scale']}"`, USAGE);
  const out = resolve(values.out ?? join(runDir, 'report', 'report.html'));
  const t0 = Date.now();
  const printer = progressPrinter({ quiet: values.quiet, prefix: 'report: ' });
  const summary = await withProgress(printer.onProgress, () => buildReport(runDir, { out, pngScale: scale, onProgress: printer.say }))
    .finally(() => printer.finish());
  console.log(`wrote ${summary.html} (${summary.sections.length} sections, ${summary.plots.length} plots in ${summary.plotsDir}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (summary.omitted.length) console.log(`omitted (no results file): ${summary.omitted.join(', ')}`);
  return 0;
}
