// `kvlens store info <store...>` and `kvlens store merge <out> <in...>`.

import { parseArgs } from 'node:util';
import { parseHook } from '../../taps/names.js';
import { KvlensUsageError } from '../../util/errors.js';
import { FeatureStore } from '../../store/reader.js';
import { mergeStores, missingParts } from '../../store/merge.js';

const USAGE = `usage:
  kvlens store info <store> [<store>...] [--verify] [--hashes] [--json]
      Summarise a feature store (several shard stores of one run are read together).
      --verify  check every shard's header holds the expected tensors; --hashes also checks sha256 (reads everything)
  kvlens store merge <out> <in> [<in>...]
      Merge shard stores (e.g. from --shard i/n runs) into a new store <out>.`;

export default async function store(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || sub === '--help' || sub === '-h') {
    console.log(USAGE);
    return sub ? 0 : 2;
  }
  if (sub === 'info') return info(rest);
  if (sub === 'merge') return merge(rest);
  throw new KvlensUsageError(`unknown store subcommand "${sub}"\n${USAGE}`);
}

function info(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { verify: { type: 'boolean' }, hashes: { type: 'boolean' }, json: { type: 'boolean' } } });
  if (positionals.length === 0) throw new KvlensUsageError(`store info: give a store directory\n${USAGE}`);
  const fs = FeatureStore.open(positionals);
  try {
    const problems = values.verify || values.hashes ? fs.verify({ hashes: values.hashes }) : undefined;
    const shards = fs.manifests.reduce((a, m) => a + m.shards.length, 0);
    const bytes = fs.manifests.reduce((a, m) => a + m.shards.reduce((b, s) => b + s.bytes, 0), 0);
    const selection = fs.manifests.flatMap((m) => m.selection);
    const viewCounts = Object.fromEntries(fs.views.map((v) => [v, fs.images().filter((id) => fs.image(id).views[v]).length]));
    const summary = {
      roots: fs.roots, kvlensVersion: fs.identity.kvlensVersion, model: fs.identity.model, prompt: fs.identity.prompt,
      processor: fs.identity.processor, dtype: fs.dtype, views: viewCounts, taps: summariseTaps(fs.taps),
      tapDims: Object.fromEntries(fs.taps.map((t) => [t, fs.manifests.find((m) => m.tapDims[t])?.tapDims[t] ?? null])),
      images: fs.images().length, shards, bytes, selection: selection.map((s) => `${s.index}/${s.count}`), missingParts: missingParts(selection),
      ...(problems ? { problems } : {}),
    };
    if (values.json) {
      console.log(JSON.stringify(summary, null, 2));
    } else {
      const lines = [
        `store      ${fs.roots.join(', ')}`,
        `model      ${fs.identity.model.path} (config sha256 ${fs.identity.model.configSha256.slice(0, 12)})`,
        `prompt     prefix ${JSON.stringify(fs.identity.prompt.prefix)}; template ${JSON.stringify(clip(fs.identity.prompt.template, 60))}`,
        `kvlens     ${fs.identity.kvlensVersion}; dtype ${fs.dtype}`,
        `taps       ${summary.taps.join('; ')}`,
        `images     ${summary.images} (${Object.entries(viewCounts).map(([v, n]) => `${v}: ${n}`).join(', ')})`,
        `shards     ${shards} files, ${(bytes / 2 ** 20).toFixed(1)} MiB; selection ${summary.selection.join(',')}` +
          (summary.missingParts.length ? `; MISSING ${summary.missingParts.join(',')}` : ''),
      ];
      if (problems) lines.push(problems.length ? `problems   ${problems.length}:\n  ${problems.join('\n  ')}` : 'verify     ok');
      console.log(lines.join('\n'));
    }
    return problems && problems.length ? 1 : 0;
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
      const key = t.replace(/\.\d+\./, '.{L}.');
      groups.set(key, [...(groups.get(key) ?? []), h.layer]);
    } else plain.push(t);
  }
  return [...plain, ...[...groups].map(([k, ls]) => k.replace('{L}', ls.length === 1 ? `${ls[0]}` : `{${ranges(ls)}}`))];
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

function merge(args: string[]): number {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length < 2) throw new KvlensUsageError(`store merge: give <out> and at least one input\n${USAGE}`);
  const [out, ...inputs] = positionals;
  const r = mergeStores(out, inputs);
  console.log(`merged ${inputs.length} stores into ${out}: ${r.images} images in ${r.shards} shards`);
  if (r.missing.length) console.error(`warning: the run's shards ${r.missing.join(', ')} are not among the inputs`);
  return 0;
}
