// `kvlens report <run-dir> [--out report.html]`: render a run directory (docs/run-dir.md) into one self-contained HTML
// report plus every plot as SVG and PNG under <out-dir>/plots/.
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { buildReport } from '../../report/build.js';
import { KvlensUsageError } from '../../util/errors.js';

const USAGE = `usage: kvlens report <run-dir> [--out FILE.html] [--png-scale N] [--quiet]
  --out        output HTML (default <run-dir>/report/report.html); plots go to <out-dir>/plots/
  --png-scale  PNG copies at N x the SVG size (default 2)
  --quiet      no progress messages on stderr`;

export default async function report(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true, strict: true,
    options: { out: { type: 'string' }, 'png-scale': { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new KvlensUsageError(`expected one run directory\n${USAGE}`);
  const runDir = resolve(positionals[0]);
  const scale = values['png-scale'] === undefined ? 2 : Number(values['png-scale']);
  if (!(scale > 0 && scale <= 8)) throw new KvlensUsageError(`--png-scale must be a number in (0, 8], got ${values['png-scale']}`);
  const out = resolve(values.out ?? join(runDir, 'report', 'report.html'));
  const t0 = Date.now();
  const summary = await buildReport(runDir, {
    out, pngScale: scale, onProgress: values.quiet ? undefined : (m) => process.stderr.write(`report: ${m}\n`),
  });
  console.log(`wrote ${summary.html} (${summary.sections.length} sections, ${summary.plots.length} plots in ${summary.plotsDir}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (summary.omitted.length) console.log(`omitted (no results file): ${summary.omitted.join(', ')}`);
  return 0;
}
