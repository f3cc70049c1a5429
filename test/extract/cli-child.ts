// Child process for the CLI tests: runs `kvlens <args>` in-process via the CLI's main (from source or compiled).
import { main } from '../../src/cli/main.js';

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => {
  console.error(e instanceof Error ? e.stack : String(e));
  process.exitCode = 70;
});
