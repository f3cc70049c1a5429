// `kvlens probe <task> --store S --data ROOT`: run one probe over every selected layer/tap of a feature store against a
// dataset's ground truth and write the tidy results table (CSV + JSON, atomically).
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { PROBE_TASKS, runProbeFlow, type ProbeTask } from '../../experiments/flow.js';
import { writeRowsCsv, writeRowsJson } from '../../probes/results.js';
import { KvlensUsageError } from '../../util/errors.js';

const USAGE = `usage: kvlens probe <${PROBE_TASKS.join('|')}> --store DIR[,DIR...] --data ROOT [options]
  --dataset    layout of --data (default: pascal5i for fewshot-seg, spair for correspondence, msrc for coseg)
  --taps       comma-separated tap names/patterns over the store's taps (default lm.*.attn.v), e.g. lm.*.attn.v,lm.*.attn.k,image.packed
  --layers     layers for "*" in the patterns: all (default), 3, 3-5, 0,7,14, -4:
  --view       store view to read (default: base)
  --out        output folder (default results/): <task>.csv and <task>.json
  --model      name for the rows' model column (default: the store's model directory name)
  --seed N     episode sampling seed (default 0)
  --fold F     Pascal-5i fold 0..3 or "all" (pool every fold's val+trn lists; default 0)
  --split S    dataset split (default: val for Pascal-5i, test for SPair)
  --subset S   loader subset (MSRC: comma-separated groups)
  --shots K    few-shot support images (default 1)
  --episodes N few-shot episodes (default: each (image, class) entry once)
  --alphas A   PCK thresholds, comma-separated (default 0.1)
  --threads N  worker threads (default: all cores)`;

function int(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new KvlensUsageError(`${flag} must be an integer, got "${v}"`);
  return n;
}

export default async function probe(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true, strict: true,
    options: {
      store: { type: 'string' }, data: { type: 'string' }, dataset: { type: 'string' }, taps: { type: 'string' }, layers: { type: 'string' },
      view: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' }, seed: { type: 'string' }, fold: { type: 'string' },
      split: { type: 'string' }, subset: { type: 'string' }, shots: { type: 'string' }, episodes: { type: 'string' }, alphas: { type: 'string' }, threads: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const task = positionals[0];
  if (positionals.length !== 1 || !(PROBE_TASKS as readonly string[]).includes(task)) throw new KvlensUsageError(`expected one task (${PROBE_TASKS.join(', ')})\n${USAGE}`);
  if (!values.store || !values.data) throw new KvlensUsageError(`--store and --data are required\n${USAGE}`);
  const t0 = Date.now();
  const res = await runProbeFlow({
    task: task as ProbeTask,
    store: values.store.split(','),
    data: values.data,
    dataset: values.dataset as never,
    taps: values.taps ? values.taps.split(',').filter(Boolean) : undefined,
    layers: values.layers,
    view: values.view,
    model: values.model,
    seed: int(values.seed, '--seed'),
    fold: values.fold === 'all' ? 'all' : int(values.fold, '--fold'),
    split: values.split,
    subset: values.subset,
    shots: int(values.shots, '--shots'),
    episodes: int(values.episodes, '--episodes'),
    alphas: values.alphas ? values.alphas.split(',').map(Number) : undefined,
    threads: int(values.threads, '--threads'),
  });
  const out = resolve(values.out ?? 'results');
  writeRowsCsv(join(out, `${task}.csv`), res.rows);
  writeRowsJson(join(out, `${task}.json`), res.rows, res.protocol);
  if (res.missing.length) console.error(`probe: ${res.missing.length} dataset image(s) are not in the store and were skipped (e.g. ${res.missing[0]})`);
  console.log(`wrote ${res.rows.length} rows (${res.taps.length} taps) to ${join(out, `${task}.csv`)} and .json in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return 0;
}
