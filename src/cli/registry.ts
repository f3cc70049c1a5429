// The subcommand table: command modules register here (src/cli/commands/index.ts) and main.ts reads it. A module of
// its own so that the commands and the entry point do not import each other.

export type Command = (args: string[]) => Promise<number>;

export interface CommandEntry {
  readonly summary: string;
  readonly load: () => Promise<Command>;
}

const COMMANDS = new Map<string, CommandEntry>();

/** Register a subcommand; `load` is a lazy import so `kvlens --help` stays fast. */
export function registerCommand(name: string, summary: string, load: () => Promise<Command>): void {
  COMMANDS.set(name, { summary, load });
}

export function commandEntries(): ReadonlyMap<string, CommandEntry> {
  return COMMANDS;
}
