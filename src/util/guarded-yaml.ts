// YAML from a user file under a size, nesting and time guard. The `yaml` package has superlinear paths on hostile text
// (a 100 KB unbalanced file took ~50 s) and 8,000 unclosed '[' crash V8's regexp compiler outright (a fatal
// out-of-memory no try/catch can stop). So: a size limit, a cheap scan refusing flow nesting deeper than 64 and more
// than YAML_ENTRIES entries (line breaks + commas; the parser's duplicate-key check is quadratic in them), before the
// parser sees the text, and for files above a few KB the parse runs in a worker thread the caller waits on, given up
// after the PARSER_MS limit.
import { receiveMessageOnPort, MessageChannel, Worker } from 'node:worker_threads';
import { parse } from 'yaml';
import { KvlensInputError } from './errors.js';
import { limit, limitError } from './limits.js';

const MAX_FLOW_DEPTH = 64;
/** Below this many characters the parse is fast whatever the text (measured: < 0.1 s), so it runs inline. */
const INLINE_CHARS = 4096;
/** Bound on the worker's own start-up (module loading), which does not depend on the file. */
const WORKER_START_MS = 60_000;

/**
 * Deepest [ / { nesting outside quoted scalars and comments, and the separators (line breaks anywhere, commas outside
 * quotes and comments): conservative over-estimates are fine, they only refuse.
 */
export function flowDepth(text: string): { depth: number; offset: number; separators: number } {
  let depth = 0, max = 0, at = 0, separators = 0;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') separators++;
    if (quote) {
      if (quote === '"' && c === '\\') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      const nl = text.indexOf('\n', i);
      if (nl < 0) break;
      i = nl;
      separators++;
    } else if ((c === '"' || c === "'") && (i === 0 || /[\s[{,:]/.test(text[i - 1]))) {
      quote = c;
    } else if (c === '[' || c === '{') {
      depth++;
      if (depth > max) { max = depth; at = i; }
    } else if ((c === ']' || c === '}') && depth > 0) {
      depth--;
    } else if (c === ',') {
      separators++;
    }
  }
  return { depth: max, offset: at, separators };
}

export function parseYamlGuarded(text: string, where: string): unknown {
  if (text.length > limit('YAML_BYTES')) throw limitError('YAML_BYTES', `a YAML text of ${text.length} characters`, where);
  const { depth, offset, separators } = flowDepth(text);
  if (separators > limit('YAML_ENTRIES')) throw limitError('YAML_ENTRIES', `a YAML text with ${separators} line breaks and commas`, where);
  if (depth > MAX_FLOW_DEPTH) throw new KvlensInputError(`not valid YAML: [ / { nested ${depth} deep (at character ${offset}); at most ${MAX_FLOW_DEPTH} is accepted`, where);
  if (text.length <= INLINE_CHARS) {
    try {
      return parse(text);
    } catch (e) {
      throw new KvlensInputError(`not valid YAML: ${(e as Error).message}`, where);
    }
  }
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('./yaml-worker.js', import.meta.url), {
    workerData: { text, flag, port: port2 }, transferList: [port2], resourceLimits: { maxOldGenerationSizeMb: 512 },
  });
  try {
    const ms = limit('PARSER_MS');
    // flag: 0 starting, 2 loaded and parsing, 1 done. Start-up is waited for apart (bounded, it does not depend on the file).
    if (Atomics.wait(flag, 0, 0, WORKER_START_MS) === 'timed-out') {
      throw new KvlensInputError(`not parsed: the YAML worker did not start within ${WORKER_START_MS} ms`, where);
    }
    if (Atomics.wait(flag, 0, 2, ms) === 'timed-out') {
      throw new KvlensInputError(`not valid YAML: parsing was stopped after ${ms} ms (set KVLENS_LIMIT_PARSER_MS to allow longer)`, where);
    }
    const reply = receiveMessageOnPort(port1)?.message as { ok: true; value: unknown } | { ok: false; message: string } | undefined;
    if (!reply) throw new KvlensInputError('not valid YAML: the parser stopped without an answer (out of memory?)', where);
    if (!reply.ok) throw new KvlensInputError(`not valid YAML: ${reply.message}`, where);
    return reply.value;
  } finally {
    void worker.terminate();
    port1.close();
  }
}
