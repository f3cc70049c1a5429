// Work limits for reading user files: a small or hostile file must never cause a huge allocation or a long loop.
// Each limit has a name, a default sized far above any real dataset file, and an environment override
// (KVLENS_LIMIT_<NAME>=<number>) for the rare legitimate input beyond it. README "Input limits" lists them.
import { KvlensInputError } from './errors.js';

export const LIMIT_DEFAULTS = {
  /** Pixels of one decoded image (width x height): PIL's DecompressionBombError threshold, 2 x MAX_IMAGE_PIXELS. */
  IMAGE_PIXELS: 178_956_970,
  /** Bytes of one pickled integer (LONG1/LONG4); RefCOCO pickles hold ids of at most 8 bytes. */
  PICKLE_INT_BYTES: 4096,
  /** Decimal digits of a text integer (pickle INT/LONG), Python's own int-from-string limit. */
  PICKLE_INT_DIGITS: 4300,
  /** Boundary points walked to rasterise one COCO polygon (5x upsampled), per pixel of width + height. */
  POLYGON_STEPS_PER_SIDE_PIXEL: 2000,
  /** Bytes of an experiment YAML / JSON file. */
  YAML_BYTES: 1_048_576,
  /**
   * Line breaks plus commas outside quotes in an experiment YAML (an upper bound on its entries): the yaml package's
   * duplicate-key check is quadratic in a collection's entries (13,000 took 3 s; a 100 KB unbalanced file ~50 s), and
   * the example experiments have under 100.
   */
  YAML_ENTRIES: 5_000,
  /**
   * Milliseconds a third-party parser (YAML, parquet) may spend on one file (parquet: per request, plus 1 ms per 20 KB)
   * before it is refused; the worker's start-up is not counted. Real files take tens of milliseconds; 5 s made a
   * spinning 21 KB parquet take over 7 s to refuse from the CLI.
   */
  PARSER_MS: 1_000,
  /** Bytes of a parquet file's footer metadata. */
  PARQUET_METADATA_BYTES: 64 * 1024 * 1024,
} as const;

export type LimitName = keyof typeof LIMIT_DEFAULTS;

/** The limit's value: KVLENS_LIMIT_<NAME> when set to a positive number, else the default. */
export function limit(name: LimitName): number {
  const raw = process.env[`KVLENS_LIMIT_${name}`];
  if (raw === undefined || raw === '') return LIMIT_DEFAULTS[name];
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new KvlensInputError(`must be a positive number, got "${raw}"`, `environment variable KVLENS_LIMIT_${name}`);
  return v;
}

/** The error for a value beyond a limit, saying how to raise it. */
export function limitError(name: LimitName, what: string, where: string): KvlensInputError {
  return new KvlensInputError(`${what} exceeds the limit of ${limit(name)} (set KVLENS_LIMIT_${name} to raise it)`, where);
}
