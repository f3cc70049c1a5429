import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rowsToCsv, toRows, writeRowsCsv, writeRowsJson } from '../../src/probes/results.js';

const rows = toRows({ task: 't', metrics: [{ metric: 'mIoU', value: 0.5, n: 10 }, { metric: 'a,"b"', value: NaN, n: 0 }], protocol: {} }, { model: 'm', tap: 'projector.out', layer: null, seed: 1 });

test('rows are tagged and CSV escapes quotes, commas and empty layers', () => {
  assert.deepEqual(rows[0], { task: 't', model: 'm', tap: 'projector.out', layer: null, metric: 'mIoU', value: 0.5, n: 10, seed: 1 });
  assert.equal(rowsToCsv(rows), 'task,model,tap,layer,metric,value,n,seed\nt,m,projector.out,,mIoU,0.5,10,1\nt,m,projector.out,,"a,""b""",NaN,0,1\n');
});

test('writers are atomic (no temp files left) and JSON keeps the protocol, NaN as null', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-results-'));
  try {
    writeRowsCsv(join(dir, 'sub', 'r.csv'), rows);
    writeRowsJson(join(dir, 'sub', 'r.json'), rows, { pascal: { shots: 5 } });
    assert.deepEqual(readdirSync(join(dir, 'sub')).sort(), ['r.csv', 'r.json']);
    const j = JSON.parse(readFileSync(join(dir, 'sub', 'r.json'), 'utf8'));
    assert.equal(j.rows[1].value, null);
    assert.deepEqual(j.protocol, { pascal: { shots: 5 } });
    assert.equal(readFileSync(join(dir, 'sub', 'r.csv'), 'utf8'), rowsToCsv(rows));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
