// kvlens command-line entry. Each subcommand lives in its own module under src/cli/commands.
import { KvlensInputError, KvlensUsageError } from '../util/errors.js';
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
    throw e;
  }
}
