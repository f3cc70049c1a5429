// kvlens command-line entry. Each subcommand lives in its own module under src/cli/commands.
// Exit codes: 0 success; 1 ran but found failures (or an internal error); 2 bad input or usage. No stack trace reaches
// a user unless KVLENS_DEBUG=1.
import { CliUsageError, didYouMean } from './args.js';
import { kvlensVersion } from '../store/provenance.js';
import { errorMessage, inputErrorFromErrno, KvlensInputError, KvlensUsageError } from '../util/errors.js';
import { commandEntries } from './registry.js';
import './commands/index.js';

export type { Command } from './registry.js';

/** Names of the registered commands (tests walk them). */
export function commandNames(): string[] {
  return [...commandEntries().keys()];
}

function usage(): string {
  const rows = [...commandEntries()].map(([n, c]) => `  ${n.padEnd(14)} ${c.summary}`);
  return ['usage: kvlens <command> [options]', '       kvlens --version | --help', '', 'commands:', ...rows, '',
    'Run `kvlens <command> --help` for a command\'s options.',
    'Exit status: 0 success; 1 ran but found failures or skipped items; 2 bad input or usage.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    console.log(`kvlens ${kvlensVersion()}`);
    return 0;
  }
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    (cmd ? console.log : console.error)(usage());
    return cmd ? 0 : 2;
  }
  const entry = commandEntries().get(cmd);
  if (!entry) {
    const what = cmd.startsWith('-') ? `unknown option ${cmd}${didYouMean(cmd.replace(/^-+/, ''), ['help', 'version'], (c) => `--${c}`)}`
      : `unknown command "${cmd}"${didYouMean(cmd, commandNames())}`;
    console.error(`kvlens: ${what}\n\n${usage()}`);
    return 2;
  }
  try {
    const run = await entry.load();
    return await run(rest);
  } catch (e) {
    return reportError(cmd, e);
  }
}

/** One line (or the usage) for the user; the stack only with KVLENS_DEBUG=1. */
function reportError(cmd: string, e: unknown): number {
  const debug = Boolean(process.env.KVLENS_DEBUG);
  if (e instanceof CliUsageError) {
    console.error(`kvlens ${cmd}: ${e.message}\n\n${e.usage}`);
    return 2;
  }
  if (e instanceof KvlensInputError || e instanceof KvlensUsageError) {
    console.error(`kvlens ${cmd}: ${e.message}`);
    if (debug) console.error(e.stack);
    return 2;
  }
  // A file-system error on a path the user gave (a non-writable or file --out, a missing folder): exit 2, path named.
  const fsError = inputErrorFromErrno(e);
  if (fsError) {
    console.error(`kvlens ${cmd}: ${fsError.message}`);
    return 2;
  }
  // Anything else is a kvlens bug: one line, no stack unless asked for.
  console.error(`kvlens ${cmd}: internal error: ${errorMessage(e).split('\n')[0]}`);
  console.error(debug ? String((e as Error)?.stack ?? '') : '(set KVLENS_DEBUG=1 for the stack trace; please report it)');
  return 1;
}
