import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readAllTensors } from '../../../src/tensor/safetensors.js';
import { maxAbsDiff, toF32 } from '../../../src/tensor/tensor.js';
import { WeightSet } from '../../../src/tensor/safetensors.js';
import { packImage } from '../../../src/models/llava_onevision/pack.js';
import { resizeBilinear } from '../../../src/models/llava_onevision/bilinear.js';
import { HF_REF } from '../../helpers/fixtures.js';
import { readFileSync } from 'node:fs';
import { parseLlavaOnevisionConfig } from '../../../src/models/llava_onevision/config.js';
import { imageSizesFrom, packAllImages, packGeometry, tilesForImage } from '../../../src/models/llava_onevision/features.js';

const llavaCfg = () => parseLlavaOnevisionConfig(JSON.parse(readFileSync(join(HF_REF, 'models/llava_onevision_tiny/config.json'), 'utf8')));

const newline = () => toF32(WeightSet.open(join(HF_REF, 'models/llava_onevision_tiny')).read('image_newline'));

test('bilinear resize matches hand-computed torch align_corners=False values', () => {
  // 1 channel, 2x4 -> 1x2: scale 2 in both axes; src index = 2*(d+0.5)-0.5 = 0.5, 2.5.
  const src = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
  const out = resizeBilinear(src, 2, 4, 1, 1, 2);
  assert.deepEqual([...out], [5.5, 7.5]);
  // Upsampling clamps the source index at 0 and at the last row: 1x2 -> 1x4 gives 0, 0.25, 0.75, 1 of the span.
  const up = resizeBilinear(Float32Array.from([0, 4]), 1, 2, 1, 1, 4);
  assert.deepEqual([...up], [0, 1, 3, 4]);
});

test('packs image A of llava_single like transformers (3x4 grid, downsample to 10x13, newlines)', () => {
  const t = readAllTensors(join(HF_REF, 'runs/llava_single.safetensors'));
  const proj = toF32(t.get('projector.output')!); // [13, 16, 64]
  const packed = packImage(proj, 13, 4, 64, newline(), { gridRows: 3, gridCols: 4, rowStart: 0, rowEnd: 12, colStart: 0, colEnd: 16, resizeTo: { rows: 10, cols: 13 } });
  const ref = toF32(t.get('image_features.packed')!);
  assert.equal(packed.length, ref.length);
  assert.ok(maxAbsDiff(packed, ref) < 1e-5, `max diff ${maxAbsDiff(packed, ref)}`);
});

test('llava_multi: real tiles per image from image_sizes, and A/B/C packed lengths and token counts', () => {
  const t = readAllTensors(join(HF_REF, 'runs/llava_multi.safetensors'));
  const cfg = llavaCfg();
  const sizes = imageSizesFrom(t.get('image_sizes')!.data as BigInt64Array);
  // A: 3x4 grid + base; B: 2x4 + base; C: 1x2 + base (notes.images).
  assert.deepEqual(sizes.map((s) => tilesForImage(s, cfg)), [13, 9, 3]);
  const lengths = [...(t.get('image_features.lengths')!.data as BigInt64Array)].map(Number);
  // Geometry alone fixes the token counts: base 16 + rows * (cols + 1).
  const counts = sizes.map((s) => { const g = packGeometry(s, cfg); const r = g.resizeTo?.rows ?? g.rowEnd - g.rowStart; const c = g.resizeTo?.cols ?? g.colEnd - g.colStart; return 16 + r * (c + 1); });
  assert.deepEqual(counts, lengths);
  assert.deepEqual(lengths, [156, 84, 44]);
});

test('packAllImages reproduces llava_single packed features from the projector output', () => {
  const t = readAllTensors(join(HF_REF, 'runs/llava_single.safetensors'));
  const cfg = llavaCfg();
  const sizes = imageSizesFrom(t.get('image_sizes')!.data as BigInt64Array);
  const p = packAllImages(toF32(t.get('projector.output')!), [13], sizes, cfg, 64, newline());
  assert.deepEqual(p.lengths, [156]);
  const d = maxAbsDiff(p.data, toF32(t.get('image_features.packed')!));
  assert.ok(d < 1e-5, `max diff ${d}`);
});

test('a single-tile image packs as its tokens plus one newline', () => {
  const tiles = Float32Array.from({ length: 4 * 2 }, (_, i) => i);
  const out = packImage(tiles, 1, 2, 2, Float32Array.from([-1, -2]), undefined);
  assert.deepEqual([...out], [0, 1, 2, 3, 4, 5, 6, 7, -1, -2]);
});

test('a hand-made 1x2 grid with a column crop: base, then rows of kept columns each followed by the newline', () => {
  // side 2, dModel 1: tile 1 = [1,2;3,4], tile 2 = [5,6;7,8] -> map [1,2,5,6;3,4,7,8]; keep cols 1..3.
  const tiles = Float32Array.from([0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  const out = packImage(tiles, 3, 2, 1, Float32Array.of(9), { gridRows: 1, gridCols: 2, rowStart: 0, rowEnd: 2, colStart: 1, colEnd: 3 });
  assert.deepEqual([...out], [0, 0, 0, 0, 2, 5, 9, 4, 7, 9]);
});
