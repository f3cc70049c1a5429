// `kvlens data check <dataset> <root>`: validate a dataset layout and report what is missing or malformed, with counts.
// `kvlens data synth <dataset> <root>`: write a small synthetic dataset in that layout (deterministic from --seed).
import { CliUsageError, didYouMean, foldOption, intOption, parseCommand } from '../args.js';
import { checkDataset, formatReport } from '../../data/check.js';
import { isDatasetName } from '../../data/index.js';
import { generateSynthetic } from '../../data/synthetic/index.js';
import { DATASET_NAMES } from '../../data/types.js';

const USAGE = `usage:
  kvlens data check <dataset> <root> [--split S] [--fold N] [--variant N] [--subset X] [--split-by S] [--image-root DIR] [--limit N] [--json]
  kvlens data synth <dataset> <root> [--seed N] [--n N]
datasets: ${DATASET_NAMES.join(', ')}
  --subset: refcoco: refcoco|refcoco+|refcocog; msrc: groups; mme: tasks; blink: sub-tasks (comma-separated)
  --fold: 0..3 or all (every fold's lists; val and trn unless --split is given)
exit status: 0 = no problems, 1 = problems found, 2 = usage error`;

/** Returns the exit status; prints the report (or JSON) on stdout. Never throws on malformed dataset input. */
export async function runData(args: string[], out: (s: string) => void = console.log): Promise<number> {
  const parsed = parseCommand({
    name: 'data', usage: USAGE, positionals: { min: 3, max: 3, what: 'argument' },
    options: {
      split: { type: 'string' }, fold: { type: 'string' }, variant: { type: 'string' }, subset: { type: 'string' },
      'split-by': { type: 'string' }, 'image-root': { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' },
      seed: { type: 'string' }, n: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  }, args, out);
  if (!parsed) return 0;
  const { values: v, positionals } = parsed;
  const [action, dataset, root] = positionals;
  if (!['check', 'synth'].includes(action)) throw new CliUsageError(`unknown action "${action}"${didYouMean(action, ['check', 'synth'])}; expected check or synth`, USAGE);
  if (!isDatasetName(dataset)) throw new CliUsageError(`unknown dataset "${dataset}"${didYouMean(dataset, DATASET_NAMES)}`, USAGE);
  const int = (s: string | undefined, flag: string) => intOption(s, flag, USAGE);
  if (action === 'synth') {
    await generateSynthetic(dataset, root, { seed: int(v.seed, 'seed') ?? 0, n: intOption(v.n, 'n', USAGE, { min: 1 }) });
    out(`wrote synthetic ${dataset} to ${root}`);
    return 0;
  }
  const fold = foldOption(v.fold, USAGE);
  const common = { split: v.split, variant: int(v.variant, 'variant'), subset: v.subset, splitBy: v['split-by'], imageRoot: v['image-root'], limit: intOption(v.limit, 'limit', USAGE, { min: 1 }) };
  // --fold all means what it means for `kvlens probe`: every fold's lists (val and trn unless --split is given).
  const runs = fold === 'all'
    ? [0, 1, 2, 3].flatMap((f) => (v.split ? [v.split] : ['val', 'trn']).map((split) => ({ ...common, fold: f, split })))
    : [{ ...common, fold }];
  const reports = [];
  for (const o of runs) reports.push({ o, report: await checkDataset(dataset, root, o) });
  if (v.json) out(JSON.stringify(fold === 'all' ? reports.map(({ o, report }) => ({ fold: o.fold, split: o.split, ...report })) : reports[0].report, null, 2));
  else out(reports.map(({ o, report }) => (fold === 'all' ? `== fold ${o.fold}, ${o.split}\n` : '') + formatReport(report)).join('\n'));
  return reports.some(({ report }) => report.fatal || report.problems.length) ? 1 : 0;
}

export default (args: string[]) => runData(args);
