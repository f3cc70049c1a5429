// Seeded fuzz of the parquet reader (hyparquet behind openParquet / parquetRows) on a RefCOCO-style file with image
// structs, lists and strings, as the refcoco-parquet and BLINK loaders read it. See harness.ts.
import { test, after } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthRefCocoParquet } from '../../src/data/synthetic/coco.js';
import { cellNumberList, cellString, cellStringList, imageFromStruct, openParquet, parquetRows } from '../../src/data/parquet.js';
import { assertClean, fuzz, mutateBytes } from './harness.js';

const tmp = mkdtempSync(join(tmpdir(), 'kvlens-fuzz-parquet-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('fuzz: parquet', async () => {
  await synthRefCocoParquet(join(tmp, 'seed'), { n: 3 });
  const seed = readFileSync(join(tmp, 'seed', 'data', 'val-00000-of-00001.parquet'));
  const path = join(tmp, 'fuzz.parquet');
  // The reader gives hyparquet PARSER_MS (+1 ms per 20 KB) per request; a lower limit keeps the suite short and still
  // exercises the stop (some mutations make hyparquet spin).
  const old = process.env.KVLENS_LIMIT_PARSER_MS;
  process.env.KVLENS_LIMIT_PARSER_MS = process.env.KVLENS_LIMIT_PARSER_MS ?? '1000';
  after(() => { if (old === undefined) delete process.env.KVLENS_LIMIT_PARSER_MS; else process.env.KVLENS_LIMIT_PARSER_MS = old; });
  const guardMs = Number(process.env.KVLENS_LIMIT_PARSER_MS);
  assertClean(await fuzz({
    name: 'parquet', defaultCases: 150, timeBoundMs: guardMs + 1500,
    make: (rng) => mutateBytes(rng, seed),
    size: (b) => b.length,
    run: async (b) => {
      writeFileSync(path, b);
      const h = await openParquet(path, 'fuzz parquet');
      for await (const { row, index } of parquetRows(h)) {
        const where = `row ${index}`;
        const cells = [() => imageFromStruct(row.image, where), () => cellString(row.question_id, 'question_id', where),
          () => cellStringList(row.answer, 'answer', where), () => cellNumberList(row.segmentation, 'segmentation', where)];
        for (const c of cells) {
          try { c(); } catch (e) { if (!(e instanceof Error) || e.name !== 'KvlensInputError') throw e; }
        }
      }
    },
  }));
});
