// Session creation over checkpoint layouts ORT would otherwise reject: hub-cache snapshots (symlinks into
// ../../blobs) and read-only directories. Nothing may be copied or written next to the weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../../src/graph/builder.js';
import { OrtSession, commonDir } from '../../src/runtime/session.js';
import { parseDevice, providerHelp } from '../../src/runtime/device.js';
import { WeightSet, writeSafetensors } from '../../src/tensor/safetensors.js';
import { f32 } from '../../src/tensor/tensor.js';
import { KvlensUsageError } from '../../src/util/errors.js';

function linearGraph(ws: WeightSet, names: string[]): GraphBuilder {
  const g = new GraphBuilder('lin');
  const x = g.input('x', 'float32', ['b', 2]);
  names.forEach((n, i) => g.output(g.linear(x, g.weight(ws.entry(n))), `y${i}`));
  return g;
}

test('hub-cache snapshot: sharded weights as symlinks into ../../blobs load without copies', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kvlens-snap-'));
  try {
    mkdirSync(join(root, 'blobs'));
    const snap = join(root, 'snapshots', 'abc123');
    mkdirSync(snap, { recursive: true });
    writeSafetensors(join(root, 'blobs', 'sha-1'), { w1: f32([2, 2], [1, 2, 3, 4]) }, undefined, 4096);
    writeSafetensors(join(root, 'blobs', 'sha-2'), { w2: f32([1, 2], [10, 20]) });
    symlinkSync('../../blobs/sha-1', join(snap, 'model-00001-of-00002.safetensors'));
    symlinkSync('../../blobs/sha-2', join(snap, 'model-00002-of-00002.safetensors'));
    const index = { weight_map: { w1: 'model-00001-of-00002.safetensors', w2: 'model-00002-of-00002.safetensors' } };
    writeFileJson(join(snap, 'model.safetensors.index.json'), index);
    chmodSync(snap, 0o555);
    chmodSync(join(root, 'blobs'), 0o555);
    const before = readdirSync(snap).sort();
    const ws = WeightSet.open(snap);
    const s = await OrtSession.create(linearGraph(ws, ['w1', 'w2']).build(), { threads: 1 });
    const out = await s.run({ x: f32([1, 2], [1, 1]) });
    await s.dispose();
    assert.deepEqual([...out.y0.data as Float32Array], [3, 7]);
    assert.deepEqual([...out.y1.data as Float32Array], [30]);
    assert.deepEqual(readdirSync(snap).sort(), before, 'nothing written into the snapshot');
    await assert.rejects(s.run({ x: f32([1, 2], [1, 1]) }), /disposed/);
  } finally {
    chmodSync(join(root, 'snapshots', 'abc123'), 0o755);
    chmodSync(join(root, 'blobs'), 0o755);
    rmSync(root, { recursive: true, force: true });
  }
});

test('weights spread over sibling directories resolve through their common parent', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kvlens-spread-'));
  try {
    for (const d of ['a', 'b']) mkdirSync(join(root, d));
    writeSafetensors(join(root, 'a', 'model.safetensors'), { w: f32([1, 2], [1, 2]) });
    writeSafetensors(join(root, 'b', 'model.safetensors'), { w: f32([1, 2], [5, 7]) });
    const wa = WeightSet.open(join(root, 'a'));
    const wb = WeightSet.open(join(root, 'b'));
    assert.equal(commonDir([wa.entry('w').file, wb.entry('w').file]), root);
    const g = new GraphBuilder('two');
    const x = g.input('x', 'float32', [1, 2]);
    g.output(g.add(g.linear(x, g.weight(wa.entry('w'))), g.linear(x, g.weight(wb.entry('w')))), 'y');
    const s = await OrtSession.create(g.build(), { threads: 1 });
    const out = await s.run({ x: f32([1, 2], [1, 1]) });
    await s.dispose();
    assert.deepEqual([...out.y.data as Float32Array], [15]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('devices: unknown names and unavailable providers give actionable errors', async () => {
  assert.throws(() => parseDevice('tpu'), KvlensUsageError);
  assert.match(providerHelp('cuda'), /libonnxruntime_providers_cuda\.so/);
  assert.match(providerHelp('webgpu'), /libvulkan1/);
  const g = new GraphBuilder('id');
  const x = g.input('x', 'float32', [1]);
  g.output(g.neg(x), 'y');
  // On machines without the provider this must fail with the install hint; where it exists it must work.
  for (const device of ['cuda', 'webgpu'] as const) {
    try {
      const s = await OrtSession.create(g.build(), { device });
      const out = await s.run({ x: f32([1], [2]) });
      assert.deepEqual([...out.y.data as Float32Array], [-2]);
      await s.dispose();
    } catch (e) {
      assert.ok(e instanceof KvlensUsageError, `expected KvlensUsageError, got ${(e as Error).message}`);
      assert.match((e as Error).message, device === 'cuda' ? /providers_cuda/ : /Vulkan/);
    }
  }
});

function writeFileJson(path: string, v: unknown): void {
  writeFileSync(path, JSON.stringify(v));
}
