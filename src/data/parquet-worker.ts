// Worker side of the guarded parquet reader (parquet.ts): hyparquet runs here, so a file that makes it spin or
// allocate without end can be stopped (terminated) by the main thread. One file per worker.
import { parentPort } from 'node:worker_threads';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import type { AsyncBuffer, FileMetaData } from 'hyparquet';

type Request = { id: number; op: 'open'; path: string } | { id: number; op: 'rows'; rowStart: number; rowEnd: number };

let file: AsyncBuffer | null = null;
let metadata: FileMetaData | null = null;

/** Top-level column names: the root's direct children, found by walking the flattened schema by num_children. */
function topLevelColumns(meta: FileMetaData): string[] {
  const n = meta.schema.length;
  const skip = (k: number, depth: number): number => {
    if (k >= n || depth > 64) throw new Error('schema children run past the schema list');
    let next = k + 1;
    for (let q = 0; q < (meta.schema[k].num_children ?? 0); q++) next = skip(next, depth + 1);
    return next;
  };
  const names: string[] = [];
  let i = 1;
  for (let c = 0; c < (meta.schema[0]?.num_children ?? 0); c++) {
    if (i >= n) throw new Error('schema children run past the schema list');
    names.push(String(meta.schema[i].name));
    i = skip(i, 1);
  }
  return names;
}

// Loaded: the main thread starts each request's time budget from here, so a slow start-up on a busy machine is not
// counted against the file.
parentPort!.postMessage({ ready: true });

parentPort!.on('message', async (req: Request) => {
  try {
    if (req.op === 'open') {
      file = await asyncBufferFromFile(req.path);
      metadata = await parquetMetadataAsync(file);
      parentPort!.postMessage({ id: req.id, ok: true, value: { numRows: Number(metadata.num_rows), columns: topLevelColumns(metadata) } });
    } else {
      const rows = await parquetReadObjects({ file: file!, metadata: metadata!, rowStart: req.rowStart, rowEnd: req.rowEnd, utf8: false });
      parentPort!.postMessage({ id: req.id, ok: true, value: rows });
    }
  } catch (e) {
    parentPort!.postMessage({ id: req.id, ok: false, message: e instanceof Error ? e.message : String(e) });
  }
});
