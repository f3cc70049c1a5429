// Seeded fuzzing of one reader: mutate seed inputs case by case and check that every case either succeeds or ends in a
// KvlensInputError (nothing else may escape), within a time bound, without allocating far beyond the input's size.
// FUZZ_CASES=N sets the number of cases per reader (default small, for the suite); FUZZ_SEED shifts the seed;
// FUZZ_REPORT=<dir> writes one JSON figure file per reader there.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32, type Rng } from '../../src/data/synthetic/prng.js';
import { KvlensInputError } from '../../src/util/errors.js';

export interface FuzzTarget<T> {
  readonly name: string;
  /** Cases in the default (suite) run; FUZZ_CASES overrides. */
  readonly defaultCases: number;
  /** Builds case `i`'s input from the rng (usually a mutation of a seed). */
  make(rng: Rng, i: number): T;
  /** Size of the input in bytes, for the allocation bound. */
  size(input: T): number;
  /** Runs the reader; may return a promise. */
  run(input: T): unknown;
  /** Per-case wall-clock bound (ms); FUZZ_TIME_BOUND_MS overrides. */
  readonly timeBoundMs?: number;
}

export interface FuzzFigures {
  reader: string; cases: number; ok: number; inputErrors: number; uncaught: number; overTime: number; overAlloc: number;
  maxMs: number; meanMs: number; maxAllocMB: number; failures: string[];
}

/** Memory a case may add beyond its input: 256 MiB of slack plus 64 bytes per input byte. */
const ALLOC_SLACK = 256 * 1024 * 1024;
const ALLOC_PER_INPUT_BYTE = 64;

function allocated(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export function fuzzCases(target: FuzzTarget<unknown>): number {
  const env = Number(process.env.FUZZ_CASES);
  return Number.isInteger(env) && env > 0 ? env : target.defaultCases;
}

export async function fuzz<T>(target: FuzzTarget<T>): Promise<FuzzFigures> {
  const cases = fuzzCases(target as FuzzTarget<unknown>);
  const bound = Number(process.env.FUZZ_TIME_BOUND_MS) || target.timeBoundMs || 2000;
  const rng = mulberry32(0x14f022 + (Number(process.env.FUZZ_SEED) || 0) + hash(target.name));
  const f: FuzzFigures = { reader: target.name, cases, ok: 0, inputErrors: 0, uncaught: 0, overTime: 0, overAlloc: 0, maxMs: 0, meanMs: 0, maxAllocMB: 0, failures: [] };
  let totalMs = 0;
  for (let i = 0; i < cases; i++) {
    const input = target.make(rng, i);
    if (process.env.FUZZ_VERBOSE) process.stderr.write(`${target.name} case ${i}: ${target.size(input)} bytes\n`);
    const before = allocated();
    const t0 = performance.now();
    let peak = 0;
    try {
      const r = target.run(input);
      if (r && typeof (r as Promise<unknown>).then === 'function') await r;
      peak = allocated() - before;
      f.ok++;
    } catch (e) {
      peak = allocated() - before;
      if (e instanceof KvlensInputError) f.inputErrors++;
      else {
        f.uncaught++;
        if (f.failures.length < 20) f.failures.push(`case ${i}: ${e instanceof Error ? `${e.name}: ${e.message}`.slice(0, 300) : String(e)}`);
      }
    }
    const ms = performance.now() - t0;
    totalMs += ms;
    f.maxMs = Math.max(f.maxMs, ms);
    f.maxAllocMB = Math.max(f.maxAllocMB, peak / 2 ** 20);
    if (ms > bound) {
      f.overTime++;
      if (f.failures.length < 20) f.failures.push(`case ${i}: took ${Math.round(ms)} ms (bound ${bound} ms)`);
    }
    if (peak > ALLOC_SLACK + ALLOC_PER_INPUT_BYTE * target.size(input)) {
      f.overAlloc++;
      if (f.failures.length < 20) f.failures.push(`case ${i}: allocated ${Math.round(peak / 2 ** 20)} MiB for a ${target.size(input)}-byte input`);
    }
  }
  f.meanMs = Math.round((totalMs / Math.max(1, cases)) * 100) / 100;
  f.maxMs = Math.round(f.maxMs);
  f.maxAllocMB = Math.round(f.maxAllocMB);
  console.log(`fuzz ${f.reader}: ${f.cases} cases, ${f.ok} read, ${f.inputErrors} input errors, ${f.uncaught} uncaught, ${f.overTime} over ${bound} ms, ${f.overAlloc} over the allocation bound; max ${f.maxMs} ms, mean ${f.meanMs} ms, max +${f.maxAllocMB} MiB`);
  if (process.env.FUZZ_REPORT) {
    mkdirSync(process.env.FUZZ_REPORT, { recursive: true });
    writeFileSync(join(process.env.FUZZ_REPORT, `${f.reader}.json`), `${JSON.stringify(f, null, 1)}\n`);
  }
  return f;
}

/** The suite's assertion over a reader's figures. */
export function assertClean(f: FuzzFigures): void {
  assert.deepEqual({ uncaught: f.uncaught, overTime: f.overTime, overAlloc: f.overAlloc }, { uncaught: 0, overTime: 0, overAlloc: 0 }, f.failures.join('\n'));
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) >>> 0;
  return h;
}

// ---- mutators ----

const INTERESTING_U32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 16000, 0x7fffffff, 0x80000000, 0xffffffff];

/** Byte-level mutation: flips, interesting values, 32-bit integers, inserted/deleted/duplicated ranges, truncation. */
export function mutateBytes(rng: Rng, seed: Uint8Array): Uint8Array {
  let b = Uint8Array.from(seed);
  const rounds = rng.int(1, 4);
  for (let r = 0; r < rounds; r++) {
    const at = b.length ? rng.int(0, b.length - 1) : 0;
    switch (rng.int(0, 7)) {
      case 0: if (b.length) b[at] ^= 1 << rng.int(0, 7); break;
      case 1: if (b.length) b[at] = rng.pick([0, 1, 0x7f, 0x80, 0xff, rng.int(0, 255)]); break;
      case 2: { // a 32-bit integer, either endianness
        if (b.length >= 4) {
          const p = Math.min(at, b.length - 4);
          new DataView(b.buffer, b.byteOffset).setUint32(p, rng.pick(INTERESTING_U32), rng.next() < 0.5);
        }
        break;
      }
      case 3: b = b.subarray(0, at); break; // truncate
      case 4: { // delete a range
        const n = rng.int(1, 16);
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + n)]);
        break;
      }
      case 5: { // insert random bytes
        const ins = Array.from({ length: rng.int(1, 16) }, () => rng.int(0, 255));
        b = Uint8Array.from([...b.subarray(0, at), ...ins, ...b.subarray(at)]);
        break;
      }
      case 6: { // duplicate a range (repeats structures)
        const n = rng.int(1, 64);
        const piece = b.subarray(at, at + n);
        const times = rng.int(1, 50);
        const out = new Uint8Array(b.length + piece.length * times);
        out.set(b.subarray(0, at));
        for (let k = 0; k < times; k++) out.set(piece, at + k * piece.length);
        out.set(b.subarray(at), at + piece.length * times);
        b = out;
        break;
      }
      default: if (b.length) b[at] = rng.int(0, 255);
    }
  }
  return b;
}

const HOSTILE_VALUES: unknown[] = [
  null, true, false, 0, -1, 1, 0.5, -0.5, 1e8, -1e8, 1e300, 2 ** 31, 2 ** 32, 2 ** 53 + 2, 16000, 16_000_048, '', 'x', '0',
  'constructor', '__proto__', 'hasOwnProperty', 'toString', 'a\nb', '\u0000', [], {}, [1], [[]], { constructor: 1 },
];

/** Structure-aware mutation of a JSON-like value: replaces, deletes, duplicates or deepens random nodes. */
export function mutateJson(rng: Rng, seed: unknown): unknown {
  const v = structuredClone(seed);
  const rounds = rng.int(1, 3);
  let root: unknown = v;
  for (let r = 0; r < rounds; r++) {
    const nodes: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> = [];
    const walk = (x: unknown, depth: number): void => { // shared sub-trees are visited once per path: cap the count
      if (depth > 12 || x === null || typeof x !== 'object' || nodes.length > 50_000) return;
      if (Array.isArray(x)) x.forEach((c, i) => { nodes.push({ parent: x, key: i }); walk(c, depth + 1); });
      else for (const k of Object.keys(x)) { nodes.push({ parent: x as Record<string, unknown>, key: k }); walk((x as Record<string, unknown>)[k], depth + 1); }
    };
    walk(root, 0);
    if (nodes.length === 0 || rng.next() < 0.02) { root = rng.pick(HOSTILE_VALUES); continue; }
    const { parent, key } = rng.pick(nodes);
    const p = parent as Record<string | number, unknown>;
    switch (rng.int(0, 6)) {
      case 0: if (Array.isArray(parent)) parent.splice(key as number, 1); else delete p[key]; break;
      case 1: { // deepen: wrap in many arrays
        let w: unknown = p[key];
        for (let k = rng.next() < 0.1 ? rng.int(1, 1000) : rng.int(1, 100); k > 0; k--) w = [w];
        p[key] = w;
        break;
      }
      case 2: { // grow: repeat an array element or an object entry
        const x = p[key];
        if (Array.isArray(x) && x.length) { const n = rng.int(1, 2000); for (let k = 0; k < n; k++) x.push(x[k % x.length]); }
        else p[key] = Array.from({ length: rng.int(2, 50) }, () => x); // shared: JSON text repeats it
        break;
      }
      case 3: if (!Array.isArray(parent)) { p[rng.pick(['constructor', '__proto__', 'toString', 'hasOwnProperty'])] = p[key]; } break;
      case 4: { const x = p[key]; p[key] = typeof x === 'number' ? rng.pick([x * 1e6, -x, x + 0.5, 0, x * 2 ** 30]) : rng.pick(HOSTILE_VALUES); break; }
      default: p[key] = rng.pick(HOSTILE_VALUES);
    }
  }
  return root;
}

/** JSON text of a mutated value, sometimes with a byte-level mutation on top. */
export function mutateJsonText(rng: Rng, seed: unknown): Uint8Array {
  const text = new TextEncoder().encode(jsonText(mutateJson(rng, seed)));
  return rng.next() < 0.25 ? mutateBytes(rng, text) : text;
}

/**
 * JSON.stringify that never throws and stays small: a mutation nested past the stack limit, or one whose shared
 * sub-trees would print to gigabytes (more than 200,000 values), becomes 10,000 nested arrays as raw text instead.
 */
export function jsonText(v: unknown): string {
  let values = 0;
  try {
    return JSON.stringify(v, (_k, x: unknown) => {
      if (++values > 200_000) throw new Error('too large');
      return x;
    }) ?? 'null';
  } catch {
    return `${'['.repeat(10_000)}1${']'.repeat(10_000)}`;
  }
}
