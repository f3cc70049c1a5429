// `npm run bench`: the project's benchmarks, each printing a table. Sections are independent.
import { benchLm, printTable } from './lm.js';
import { runProbeBench } from './probes.js';

async function main(): Promise<void> {
  printTable('Language model (Qwen2-0.5B shape, random weights, CPU)', await benchLm());
  await runProbeBench(); // prints its own line: 1,000-episode few-shot probe, 729 tokens x 512 dims, 2 threads
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
