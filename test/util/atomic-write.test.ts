// The one temp-file-and-rename writer: creates the folder, replaces the target whole, leaves no temp file behind when
// the rename fails (the target is a folder), in its async and sync forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic, writeFileAtomicSync } from '../../src/util/atomic-write.js';

test('writeFileAtomic / writeFileAtomicSync: folder created, content replaced, no temp file left on failure', async () => {
  const d = mkdtempSync(join(tmpdir(), 'kvlens-atomic-'));
  try {
    await writeFileAtomic(join(d, 'a', 'b', 'x.txt'), 'one');
    await writeFileAtomic(join(d, 'a', 'b', 'x.txt'), new Uint8Array([116, 119, 111]));
    assert.equal(readFileSync(join(d, 'a', 'b', 'x.txt'), 'utf8'), 'two');
    writeFileAtomicSync(join(d, 'c', 'y.txt'), 'three');
    assert.equal(readFileSync(join(d, 'c', 'y.txt'), 'utf8'), 'three');
    mkdirSync(join(d, 'e', 'dir'), { recursive: true });
    mkdirSync(join(d, 'e', 'dir', 'inside'));
    await assert.rejects(writeFileAtomic(join(d, 'e', 'dir'), 'no'));
    assert.throws(() => writeFileAtomicSync(join(d, 'e', 'dir'), 'no'));
    assert.deepEqual(readdirSync(join(d, 'e')), ['dir']);
    assert.deepEqual(readdirSync(join(d, 'a', 'b')), ['x.txt']);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
