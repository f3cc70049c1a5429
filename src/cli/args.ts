// One argument parser for every kvlens command, so the contract is the same everywhere: `--help`/`-h` prints the
// command's usage on stdout and exits 0 (even next to other, bad, options); an unknown option, a missing option value
// or a bad value is a CliUsageError — exit 2 with the message, a "did you mean" where a known option is close, and the
// command's usage (src/cli/main.ts prints it).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { KvlensUsageError } from '../util/errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Config<O extends Options> = { args: string[]; options: O; allowPositionals: true; strict: true };
/** What parseArgs returns for these options: typed values and the positionals. */
export type Parsed<O extends Options> = ReturnType<typeof parseArgs<Config<O>>>;

/** Bad command-line input: main prints `kvlens <cmd>: message`, then the usage, and exits 2. */
export class CliUsageError extends KvlensUsageError {
  constructor(message: string, readonly usage: string) {
    super(message);
  }
}

export interface CommandSpec<O extends Options> {
  /** e.g. "store info", used in messages. */
  readonly name: string;
  readonly usage: string;
  readonly options: O;
  /** Allowed positional count (default 0..Infinity). */
  readonly positionals?: { readonly min?: number; readonly max?: number; readonly what?: string };
}

/** True when the arguments ask for help (before any `--`). */
export function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/** Edit distance, for "did you mean" (short strings only). */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** The closest candidate to `word` (edit distance ≤ max(2, a third of its length), or a prefix of it), or undefined. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 0.5 : editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** " (did you mean X?)" or "". */
export function didYouMean(word: string, candidates: readonly string[], show = (c: string) => c): string {
  const c = closest(word, candidates);
  return c ? ` (did you mean ${show(c)}?)` : '';
}

/**
 * Parse `args` against the spec. Returns undefined when help was asked (the usage is already printed on stdout);
 * throws CliUsageError for anything a user typed wrong.
 */
export function parseCommand<O extends Options>(spec: CommandSpec<O>, args: readonly string[], out: (s: string) => void = console.log): Parsed<O> | undefined {
  if (wantsHelp(args)) {
    out(spec.usage);
    return undefined;
  }
  const fail = (msg: string): never => { throw new CliUsageError(msg, spec.usage); };
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs<Config<O>>({ args: [...args], options: spec.options, allowPositionals: true, strict: true });
  } catch (e) {
    const err = e as Error & { code?: string };
    const names = Object.keys(spec.options);
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const opt = /'([^']+)'/.exec(err.message)?.[1] ?? '?';
      const bare = opt.replace(/^-+/, '').split('=')[0];
      return fail(`unknown option ${opt}${didYouMean(bare, names, (c) => `--${c}`)}`);
    }
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const opt = /'(-[^' ]+)/.exec(err.message)?.[1] ?? '';
      const name = opt.replace(/^-+/, '');
      const def = spec.options[name] ?? Object.values(spec.options as Options).find((o) => o.short === name);
      return fail(def?.type === 'boolean' ? `${opt} takes no value` : `${opt} expects a value`);
    }
    return fail(err.message);
  }
  const { min = 0, max = Infinity, what = 'argument' } = spec.positionals ?? {};
  const pos = parsed.positionals;
  if (pos.length > max) fail(`unexpected ${what} "${pos[max]}"${max === 0 ? ' (this command takes options only)' : ''}`);
  if (pos.length < min) fail(min === 1 ? `expected ${max === 1 ? 'one' : 'at least one'} ${what}` : `expected ${min === max ? min : `at least ${min}`} arguments (${what}), got ${pos.length}`);
  return parsed;
}

/** Integer option value (undefined when absent) with bounds; a CliUsageError names the flag otherwise. */
export function intOption(v: string | undefined, flag: string, usage: string, opts: { min?: number; max?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  const { min = -Infinity, max = Infinity } = opts;
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    const range = min === 1 && max === Infinity ? 'a positive integer' : min === 0 && max === Infinity ? 'an integer >= 0'
      : Number.isFinite(min) && Number.isFinite(max) ? `an integer in ${min}..${max}` : 'an integer';
    throw new CliUsageError(`--${flag.replace(/^-+/, '')}: expected ${range}, got "${v}"`, usage);
  }
  return n;
}

/** Finite number option value (undefined when absent). */
export function numOption(v: string | undefined, flag: string, usage: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new CliUsageError(`--${flag.replace(/^-+/, '')}: expected a number, got "${v}"`, usage);
  return n;
}

/** One of a fixed set of values, with "did you mean". */
export function choiceOption<T extends string>(v: string | undefined, flag: string, choices: readonly T[], usage: string): T | undefined {
  if (v === undefined) return undefined;
  if (!(choices as readonly string[]).includes(v)) {
    throw new CliUsageError(`--${flag.replace(/^-+/, '')}: expected ${choices.join(' | ')}, got "${v}"${didYouMean(v, choices)}`, usage);
  }
  return v as T;
}

/** Pascal-5i `--fold`: 0..3 or "all" — the same meaning in every command that takes it. */
export function foldOption(v: string | undefined, usage: string): number | 'all' | undefined {
  if (v === 'all') return 'all';
  return intOption(v, 'fold', usage, { min: 0, max: 3 });
}
