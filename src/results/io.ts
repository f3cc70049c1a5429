// Atomic writers and validating readers for run-directory files. A reader never returns half-valid data: it either
// returns the parsed value or throws a KvlensInputError naming the file and the offending field.
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { KvlensInputError } from '../util/errors.js';
import { rowsToCsv } from '../probes/results.js';
import { ProbeRowSchema, type ProbeRow } from './schema.js';
import { writeFileAtomic } from '../util/atomic-write.js';

export { writeFileAtomic };

/** Validate then write JSON atomically: bad values never reach the disk. */
export async function writeJsonAtomic<S extends z.ZodType>(path: string, schema: S, value: z.input<S>): Promise<void> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new KvlensInputError(`refusing to write invalid data: ${describeIssues(parsed.error)}`, path);
  await writeFileAtomic(path, JSON.stringify(parsed.data, null, 1) + '\n');
}

export function describeIssues(err: z.ZodError): string {
  return err.issues.slice(0, 5).map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ')
    + (err.issues.length > 5 ? `; and ${err.issues.length - 5} more` : '');
}

/** Parse an already-loaded JSON value against a schema, naming the file on failure. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, path: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new KvlensInputError(`does not match the run-directory format (docs/run-dir.md): ${describeIssues(parsed.error)}`, path);
  return parsed.data;
}

export async function readJsonValidated<S extends z.ZodType>(path: string, schema: S): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new KvlensInputError(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new KvlensInputError(`not valid JSON (${(e as Error).message})`, path);
  }
  return parseWith(schema, json, path);
}

// ---- probes.csv: the same rows as probes.json, one per line, RFC-4180 quoting ----

const CSV_COLUMNS = ['task', 'model', 'tap', 'layer', 'metric', 'value', 'n', 'seed'] as const;

/** The CSV form is the probes' own (src/probes/results.ts rowsToCsv), so both writers produce identical files. */
export function probeRowsToCsv(rows: readonly ProbeRow[]): string {
  return rowsToCsv(rows);
}

/** Split CSV text into records of fields, honouring quoted fields with embedded commas, quotes and newlines. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') quoted = false; else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { record.push(field); field = ''; } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      record.push(field); records.push(record); record = []; field = '';
    } else field += ch;
  }
  if (field !== '' || record.length > 0) { record.push(field); records.push(record); }
  return records.filter((r) => !(r.length === 1 && r[0] === ''));
}

/** Rows from probes.csv; rows whose value is empty or NaN (undefined metric) are dropped and counted in `skipped`. */
export function probeRowsFromCsv(text: string, path: string): { rows: ProbeRow[]; skipped: number } {
  const [header, ...records] = parseCsv(text);
  if (!header) throw new KvlensInputError('empty CSV, expected a header line', path);
  const idx = CSV_COLUMNS.map((c) => header.indexOf(c));
  const missing = CSV_COLUMNS.filter((_, i) => idx[i] < 0);
  if (missing.length) throw new KvlensInputError(`CSV header lacks column(s) ${missing.join(', ')}; expected ${CSV_COLUMNS.join(',')}`, path);
  let skipped = 0;
  const rows: ProbeRow[] = [];
  records.forEach((rec, i) => {
    const get = (c: (typeof CSV_COLUMNS)[number]) => rec[idx[CSV_COLUMNS.indexOf(c)]] ?? '';
    const num = (c: (typeof CSV_COLUMNS)[number]) => (get(c).trim() === '' ? Number.NaN : Number(get(c)));
    const raw = {
      task: get('task'), model: get('model'), tap: get('tap'), layer: get('layer') === '' ? null : num('layer'),
      metric: get('metric'), value: num('value'), n: num('n'), seed: num('seed'),
    };
    if (Number.isNaN(raw.value)) {
      skipped++;
      return;
    }
    rows.push(parseWith(ProbeRowSchema, raw, `${path} line ${i + 2}`));
  });
  return { rows, skipped };
}
