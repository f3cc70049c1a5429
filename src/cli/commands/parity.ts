// `kvlens parity <fixture-dir>`: recompute a reference fixture set with kvlens and compare tensor by tensor.

import { choiceOption, parseCommand } from '../args.js';
import { parseDevice } from '../../runtime/device.js';
import { runParity } from '../../parity/run.js';
import { formatSummary, formatTable } from '../../parity/report.js';

const USAGE = `usage: kvlens parity <fixture-dir> [--device cpu|cuda|webgpu] [--run <name>]... [--json]
  Recompute every tensor of every run in a reference fixture set (manifest.json + models/ + runs/ + inputs/,
  e.g. test/fixtures/hf-reference) with the kvlens engine and compare: one row per tensor with the max abs
  error, tolerance and status. Exit code 1 if any tensor exceeds its tolerance or cannot be computed; runs of
  model families kvlens does not implement are listed as skipped.
  --run <name>  only this run (repeatable)
  --json        machine-readable output`;

export default async function parity(args: string[]): Promise<number> {
  const parsed = parseCommand({
    name: 'parity', usage: USAGE, positionals: { min: 1, max: 1, what: 'fixture directory' },
    options: { device: { type: 'string', default: 'cpu' }, run: { type: 'string', multiple: true }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  }, args);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const device = parseDevice(choiceOption(values.device, 'device', ['cpu', 'cuda', 'webgpu'], USAGE) ?? 'cpu');
  const json = !!values.json;
  let printedHeader = false;
  const result = await runParity(positionals[0], {
    device,
    runs: values.run,
    onRun: json ? undefined : (rows) => {
      // Stream one run at a time so long fixture sets show progress; the header comes with the first run.
      const table = formatTable(rows).split('\n');
      console.log((printedHeader ? table.slice(1) : table).join('\n'));
      printedHeader = true;
    },
  });
  if (json) {
    console.log(JSON.stringify({ fixtureDir: positionals[0], device, rows: result.rows, counts: result.summary.counts, exitCode: result.summary.exitCode }, null, 2));
  } else {
    console.log(formatSummary(result.summary));
  }
  return result.summary.exitCode;
}
