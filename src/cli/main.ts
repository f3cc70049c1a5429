// kvlens command-line entry. Each subcommand lives in its own module under src/cli/commands.
import { errorMessage, inputErrorFromErrno, KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { commandEntries } from './registry.js';

export type { Command } from './registry.js';

function usage(): string {
  const rows = [...commandEntries()].map(([n, c]) => `  ${n.padEnd(14)} ${c.summary}`);
  return ['usage: kvlens <command> [options]', '', 'commands:', ...rows, '', 'Run `kvlens <command> --help` for a command\'s options.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  await import('./commands/index.js');
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return cmd ? 0 : 2;
  }
  const entry = commandEntries().get(cmd);
  if (!entry) {
    console.error(`kvlens: unknown command "${cmd}"\n\n${usage()}`);
    return 2;
  }
  try {
    const run = await entry.load();
    return await run(rest);
  } catch (e) {
    if (e instanceof KvlensInputError || e instanceof KvlensUsageError) {
      console.error(`kvlens ${cmd}: ${e.message}`);
      return 2;
    }
    // A file-system error on a path the user gave (a non-writable or file --out, a missing folder): exit 2, path named.
    const fsError = inputErrorFromErrno(e);
    if (fsError) {
      console.error(`kvlens ${cmd}: ${fsError.message}`);
      return 2;
    }
    // Anything else is a kvlens bug: one line, no stack unless asked for.
    console.error(`kvlens ${cmd}: internal error: ${errorMessage(e)}${process.env.KVLENS_DEBUG ? `\n${(e as Error)?.stack ?? ''}` : ' (set KVLENS_DEBUG=1 for the stack trace; please report it)'}`);
    return 1;
  }
}
