// `npm run bench`: the project's benchmarks, each printing a table. Sections are independent.
import { benchLm, printTable } from './lm.js';

async function main(): Promise<void> {
  printTable('Language model (Qwen2-0.5B shape, random weights, CPU)', await benchLm());
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
