// `kvlens data check <dataset> <root>`: validate a dataset layout and report what is missing or malformed, with counts.
// `kvlens data synth <dataset> <root>`: write a small synthetic dataset in that layout (deterministic from --seed).
import { parseArgs } from 'node:util';
import { checkDataset, formatReport } from '../../data/check.js';
import { isDatasetName } from '../../data/index.js';
import { generateSynthetic } from '../../data/synthetic/index.js';
import { DATASET_NAMES } from '../../data/types.js';
import { KvlensUsageError } from '../../util/errors.js';

const USAGE = `usage:
  kvlens data check <dataset> <root> [--split S] [--fold N] [--variant N] [--subset X] [--split-by S] [--image-root DIR] [--limit N] [--json]
  kvlens data synth <dataset> <root> [--seed N] [--n N]
datasets: ${DATASET_NAMES.join(', ')}
  --subset: refcoco: refcoco|refcoco+|refcocog; msrc: groups; mme: tasks; blink: sub-tasks (comma-separated)
exit status: 0 = no problems, 1 = problems found, 2 = usage error`;

function intFlag(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new KvlensUsageError(`--${name} must be an integer, got ${JSON.stringify(v)}`);
  return n;
}

/** Returns the exit status; prints the report (or JSON) on stdout. Never throws on malformed dataset input. */
export async function runData(args: string[], out: (s: string) => void = console.log): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args, allowPositionals: true, strict: true,
      options: {
        split: { type: 'string' }, fold: { type: 'string' }, variant: { type: 'string' }, subset: { type: 'string' },
        'split-by': { type: 'string' }, 'image-root': { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' },
        seed: { type: 'string' }, n: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    out(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [action, dataset, root] = positionals;
  if (v.help) { out(USAGE); return 0; }
  if (!action || !dataset || !root || !['check', 'synth'].includes(action) || positionals.length > 3) { out(USAGE); return 2; }
  if (!isDatasetName(dataset)) { out(`unknown dataset "${dataset}"\n${USAGE}`); return 2; }
  try {
    if (action === 'synth') {
      await generateSynthetic(dataset, root, { seed: intFlag(v.seed, 'seed') ?? 0, n: intFlag(v.n, 'n') });
      out(`wrote synthetic ${dataset} to ${root}`);
      return 0;
    }
    const report = await checkDataset(dataset, root, {
      split: v.split, fold: intFlag(v.fold, 'fold'), variant: intFlag(v.variant, 'variant'), subset: v.subset,
      splitBy: v['split-by'], imageRoot: v['image-root'], limit: intFlag(v.limit, 'limit'),
    });
    out(v.json ? JSON.stringify(report, null, 2) : formatReport(report));
    return report.fatal || report.problems.length ? 1 : 0;
  } catch (e) {
    if (e instanceof KvlensUsageError) { out(`${e.message}\n${USAGE}`); return 2; }
    throw e;
  }
}

export default (args: string[]) => runData(args);
