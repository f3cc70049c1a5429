// Profile LLaVA-OneVision-0.5B-shaped prefills: per-part breakdown of each (bench/breakdown.ts: wall, system time,
// page faults, resident memory per vision tower / LM layer / head / tap copies). Start it with the malloc tunables
// (src/runtime/malloc.ts) to see what the CLI gets, without them to see glibc's defaults.
//
//   node dist/bench/profile.js <checkpoint dir> [--repeats 2]
// The checkpoint dir is written (LLAVA_ONEVISION_0_5B, random weights) when it does not exist yet.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LlavaOnevision } from '../src/models/llava_onevision/model.js';
import { LLAVA_ONEVISION_0_5B, writeLlavaOnevisionCheckpoint } from '../src/models/synthetic/llava-onevision.js';
import { LlavaOnevisionProcessor } from '../src/preprocess/processor.js';
import { counters, spanBetween, startRecording } from '../src/runtime/stats.js';
import { breakdownRows, groupSpans } from './breakdown.js';
import { peakRssBytes, printTable } from './common.js';
import { noiseImage, promptWithTextTokens } from './vlm.js';

const argv = process.argv.slice(2);
const dir = argv[0];
const ri = argv.indexOf('--repeats');
const repeats = ri >= 0 ? Number(argv[ri + 1]) : 2;
if (!existsSync(join(dir, 'config.json'))) {
  console.error(`writing checkpoint to ${dir} ...`);
  writeLlavaOnevisionCheckpoint(dir, LLAVA_ONEVISION_0_5B);
}
const processor = await LlavaOnevisionProcessor.fromPretrained(dir);
const prep = await promptWithTextTokens(processor, noiseImage(384), 32);
const ids = [Array.from(prep.inputIds.data, Number)];
const c0 = counters();
const model = await LlavaOnevision.load(dir);
const load = spanBetween('load', c0, counters());
console.log(`load ${load.wallS.toFixed(2)} s sys ${load.sysS.toFixed(2)} faults ${load.minorFaults}  rss ${(peakRssBytes() / 2 ** 30).toFixed(2)} GiB`);
for (let r = 0; r < repeats; r++) {
  const rec = startRecording();
  const a = counters();
  await model.forward({ inputIds: ids, pixelValues: prep.pixelValues!, imageSizes: prep.imageSizes!, taps: ['lm.*.attn.k', 'lm.*.attn.v'], logitsAt: 'last' });
  const total = spanBetween('forward', a, counters());
  const spans = rec.stop();
  printTable(`prefill ${r}: ${ids[0].length} tokens`, breakdownRows(groupSpans(spans, total), total));
}
console.log(`peak RSS ${(peakRssBytes() / 2 ** 30).toFixed(2)} GiB`);
await model.dispose();
