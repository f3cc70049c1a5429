// `kvlens store info <store...>` and `kvlens store merge <out> <in...>`.

import { CliUsageError, didYouMean, parseCommand, wantsHelp } from '../args.js';
import { parseHook, tapAtLayer, tapFamily } from '../../taps/names.js';
import { FeatureStore } from '../../store/reader.js';
import { mergeStores } from '../../store/merge.js';
import { progressPrinter, withProgress } from '../../util/progress.js';

const INFO_USAGE = `usage: kvlens store info <store> [<store>...] [--verify] [--hashes] [--json]
  Summarise a feature store (several shard stores of one run are read together) and check every shard file is
  present with the size the manifest records.
  --verify  also check every shard's header holds the expected tensors, and that the store holds the whole run
            (a shard store alone, or an --allow-partial merge, is partial); --hashes also checks each shard's
            sha256 (reads everything)
  Exit status: 0 healthy (and, with --verify, complete); 1 a shard is missing, truncated or damaged, the store is
  partial (--verify), or a writer's lock is present (--verify); 2 not a store / unreadable manifest.`;
const MERGE_USAGE = `usage: kvlens store merge <out> <in> [<in>...] [--allow-partial] [--quiet]
  Merge the shard stores of one sharded run (extract --shard i/n, or a job array) into a new store <out>.
  Inputs are ordered by shard index, whatever order they are given in. Refused (exit 2, naming the input and the
  field): stores of another model or weights, processor, prompt, taps, dtype, views or kvlens version; stores cut
  from another image list; another shard count; a shard held twice; a shard whose bytes do not match its sha256;
  a store with a writer's lock. Reads no environment variables.
  --allow-partial  merge even when shards of the run are missing: <out> is marked partial (its selection lacks
                   them; store info shows MISSING, --verify fails) and the exit status is 1.
  --quiet          no progress on stderr (default: MiB (KiB) copied, count/total, rate and ETA; a line every 5 s in a log)
  Exit status: 0 complete; 1 written but partial (--allow-partial); 2 refused.`;
const USAGE = `usage:
${[INFO_USAGE, MERGE_USAGE].map((u) => `  ${u.slice('usage: '.length).split('\n').join('\n  ')}`).join('\n')}`;

export default async function store(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'info') return info(rest);
  if (sub === 'merge') return merge(rest);
  if (wantsHelp(args)) {
    console.log(USAGE);
    return 0;
  }
  if (!sub) throw new CliUsageError('give a subcommand: info or merge', USAGE);
  throw new CliUsageError(sub.startsWith('-') ? `unknown option ${sub} (give the subcommand first: info or merge)`
    : `unknown store subcommand "${sub}"${didYouMean(sub, ['info', 'merge'])}`, USAGE);
}

function info(args: string[]): number {
  const parsed = parseCommand({
    name: 'store info', usage: INFO_USAGE, positionals: { min: 1, what: 'store directory' },
    options: { verify: { type: 'boolean' }, hashes: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  }, args);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const fs = FeatureStore.open(positionals);
  try {
    const verifying = Boolean(values.verify || values.hashes);
    const problems = verifying ? fs.verify({ hashes: values.hashes }) : fs.checkSizes();
    const shards = fs.manifests.reduce((a, m) => a + m.shards.length, 0);
    const bytes = fs.manifests.reduce((a, m) => a + m.shards.reduce((b, s) => b + s.bytes, 0), 0);
    const selection = fs.manifests.flatMap((m) => m.selection);
    const missing = fs.missing();
    const list = fs.manifests[0].list;
    const viewCounts = Object.fromEntries(fs.views.map((v) => [v, fs.images().filter((id) => fs.image(id).views[v]).length]));
    const summary = {
      roots: fs.roots, kvlensVersion: fs.identity.kvlensVersion, model: fs.identity.model, prompt: fs.identity.prompt,
      processor: fs.identity.processor, dtype: fs.dtype, views: viewCounts, taps: summariseTaps(fs.taps),
      tapDims: Object.fromEntries(fs.taps.map((t) => [t, fs.manifests.find((m) => m.tapDims[t])?.tapDims[t] ?? null])),
      images: fs.images().length, list, shards, bytes, selection: selection.map((s) => `${s.index}/${s.count}`), missingParts: missing,
      partial: missing.length > 0, problems,
    };
    if (values.json) {
      console.log(JSON.stringify(summary, null, 2));
    } else {
      const lines = [
        `store      ${fs.roots.join(', ')}`,
        `model      ${fs.identity.model.path} (config sha256 ${fs.identity.model.configSha256.slice(0, 12)}` +
          `${fs.identity.model.weights ? `; weights ${fs.identity.model.weights.method} sha256 ${fs.identity.model.weights.sha256.slice(0, 12)} over ${fs.identity.model.weights.files} files` : '; weights not recorded'})`,
        `prompt     prefix ${JSON.stringify(fs.identity.prompt.prefix)}; template ${JSON.stringify(clip(fs.identity.prompt.template, 60))}`,
        `kvlens     ${fs.identity.kvlensVersion}; dtype ${fs.dtype}`,
        `taps       ${summary.taps.join('; ')}`,
        `images     ${summary.images} (${Object.entries(viewCounts).map(([v, n]) => `${v}: ${n}`).join(', ')})` +
          (list ? `; list of ${list.images} images (sha256 ${list.sha256.slice(0, 12)})` : ''),
        `shards     ${shards} files, ${(bytes / 2 ** 20).toFixed(1)} MiB; selection ${summary.selection.join(',')}` +
          (missing.length ? `; MISSING ${missing.join(',')} (partial)` : ''),
      ];
      if (problems.length) lines.push(`problems   ${problems.length}:\n  ${problems.join('\n  ')}`);
      else lines.push(verifying ? 'verify     ok (every shard checked, the whole run present)' : 'files      ok (every shard present, sizes match; --verify checks contents)');
      console.log(lines.join('\n'));
    }
    return problems.length ? 1 : 0;
  } finally {
    fs.close();
  }
}

/** "lm.{0-27}.attn.v" style summary: taps grouped by kind with their layers compressed into ranges. */
function summariseTaps(taps: readonly string[]): string[] {
  const groups = new Map<string, number[]>();
  const plain: string[] = [];
  for (const t of taps) {
    const h = parseHook(t);
    if ('layer' in h) {
      const key = tapFamily(t);
      groups.set(key, [...(groups.get(key) ?? []), h.layer]);
    } else plain.push(t);
  }
  return [...plain, ...[...groups].map(([k, ls]) => tapAtLayer(k, ls.length === 1 ? `${ls[0]}` : `{${ranges(ls)}}`))];
}

function ranges(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length;) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    parts.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 3)}...` : s;
}

async function merge(args: string[]): Promise<number> {
  const parsed = parseCommand({
    name: 'store merge', usage: MERGE_USAGE, positionals: { min: 2, what: '<out> and <in>...' },
    options: { 'allow-partial': { type: 'boolean' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  }, args);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const [out, ...inputs] = positionals;
  // MiB (KiB) copied with count/total, rate and ETA on stderr (a bar on a terminal, a line every 5 s in a log).
  const printer = progressPrinter({ quiet: values.quiet, prefix: 'store merge: ' });
  const r = await withProgress(printer.onProgress, async () => mergeStores(out, inputs, { allowPartial: values['allow-partial'] })).finally(() => printer.finish());
  console.log(`merged ${inputs.length} stores into ${out}: ${r.images} images in ${r.shards} shards`);
  if (r.missing.length) {
    console.error(`store merge: PARTIAL: missing ${r.missing.join('; ')}; ${out} is marked partial (exit 1)`);
    return 1;
  }
  return 0;
}
