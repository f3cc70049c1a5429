// `npm run bench`: the project's benchmarks, each printing a table; the figures also go to a JSON file.
//
//   npm run bench -- [--out bench-results.json] [--only vlm,lm,probes,big,e2e] [--repeats 2] [--models ov,qwen,next] [--lm-layers 2] [--tiny]
//                    [--images 20] [--model <0.5B-shaped checkpoint dir for e2e>]
//
// Default sections: vlm (the issue-2 targets on the LLaVA-OneVision-0.5B shape) and probes. `lm` (the Qwen2-0.5B
// language model alone, 729 + 32 tokens) is opt-in to keep the default run within a few minutes. `big` (opt-in, tens
// of minutes): the real shapes of LLaVA-OneVision-7B, Qwen2.5-VL-7B and Llama-3-LLaVA-NeXT-8B (bench/big-models.ts;
// `--models ov,qwen,next` picks some, `--lm-layers K` sets how many LM layers are written and measured). `e2e` (opt-in,
// about 1 minute per image on 2 quiet cores): the keys experiment and the flow extraction + probes over --images N images
// (bench/e2e.ts). The vlm section prints page faults and system time beside each figure and a per-part breakdown of
// the last prefill (bench/breakdown.ts). Children measure with the CLI's glibc malloc tunables (src/runtime/malloc.ts);
// KVLENS_NO_MALLOC_TUNING=1 measures glibc's defaults instead.

import { writeFileSync, renameSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { printTable, type BenchRow } from './common.js';
import { benchLm } from './lm.js';
import { runProbeBench } from './probes.js';
import { benchVlm } from './vlm.js';
import { benchBigModels, bigModelRows, bigModelTitle } from './big-models.js';
import { benchE2e } from './e2e.js';

const SECTIONS = ['vlm', 'lm', 'probes', 'big', 'e2e'] as const;
type Section = (typeof SECTIONS)[number];

function parseArgs(argv: readonly string[]): { out: string; only: Section[]; repeats: number } {
  const val = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const only = (val('--only') ?? 'vlm,probes').split(',').filter(Boolean);
  for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown section "${s}" (use ${SECTIONS.join(', ')})`);
  const repeats = Number(val('--repeats') ?? 2);
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error('--repeats: a positive integer');
  return { out: resolve(val('--out') ?? 'bench-results.json'), only: only as Section[], repeats };
}

const USAGE = `usage: npm run bench -- [--out bench-results.json] [--only vlm,lm,probes,big,e2e] [--repeats 2]
                     [--models ov,qwen,next] [--lm-layers 2] [--tiny] [--images 20] [--model <dir>]
  default sections: vlm, probes; big and e2e take tens of minutes (README "Benchmarks" says what each measures)
  --tiny   big: the families' tiny test shapes instead of the real 7-8B shapes (a quick check of the same path)`;

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', loadAvgStart: loadavg() },
  };
  const rowsJson = (rows: readonly BenchRow[]) => rows.map((r) => ({ ...r }));
  if (args.only.includes('vlm')) {
    const s = await benchVlm({ repeats: args.repeats });
    printTable('LLaVA-OneVision-0.5B shape (random weights, CPU): one 384x384 image + 32 text tokens', s.rows);
    printTable('where the last prefill went (wall s, share, system s, minor page faults)', s.breakdown);
    results.vlm = { rows: rowsJson(s.rows), raw: s.result, checkpointWriteSeconds: s.checkpointWriteSeconds };
  }
  if (args.only.includes('lm')) {
    const rows = await benchLm();
    printTable('Language model alone (Qwen2-0.5B shape, random weights, CPU)', rows);
    results.lm = { rows: rowsJson(rows) };
  }
  if (args.only.includes('big')) {
    const argv = process.argv.slice(2);
    const val = (f: string) => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined; };
    const big = await benchBigModels({ models: val('--models')?.split(',').filter(Boolean), lmLayers: Number(val('--lm-layers') ?? 2), repeats: args.repeats, tiny: argv.includes('--tiny') });
    for (const r of big) printTable(bigModelTitle(r), bigModelRows(r));
    results.big = big.map((r) => ({ ...r, rows: rowsJson(bigModelRows(r)) }));
  }
  if (args.only.includes('e2e')) {
    const argv = process.argv.slice(2);
    const val = (f: string) => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined; };
    const images = Number(val('--images') ?? 20);
    if (!Number.isInteger(images) || images < 1) throw new Error('--images: a positive integer');
    const e = await benchE2e({ images, model: val('--model') });
    printTable(`End to end (LLaVA-OneVision-0.5B shape, random weights, CPU): keys experiment and flow extraction + probes, ${images} images each`, e.rows);
    results.e2e = { rows: rowsJson(e.rows), raw: e.result };
  }
  if (args.only.includes('probes')) results.probes = await runProbeBench(); // prints its own line: 1,000-episode few-shot probe
  (results.machine as Record<string, unknown>).loadAvgEnd = loadavg();
  const tmp = `${args.out}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(results, null, 2) + '\n');
  renameSync(tmp, args.out);
  console.log(`\nresults written to ${args.out}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
