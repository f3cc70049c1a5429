// The one token-map-to-grid function: an image's tokens of a view in raster order (newlines out), per image of a
// multi-image prompt; views an image lacks are absent; tokens that do not fill a grid are an error naming the view.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageViewGrids, viewGrid, viewGrids, type ImageTokenInfo, type TokenMap } from '../../src/preprocess/token-map.js';

const info = (image: number, view: ImageTokenInfo['view'], row: number, col: number): ImageTokenInfo => ({ image, view, row, col, box: null });

/** text, image 0 = base 2x2 + highres 1x3 with a newline, text, image 1 = base 2x2 only (in column-major order). */
function map(): TokenMap {
  const entries: (ImageTokenInfo | null)[] = [null,
    info(0, 'base', 0, 0), info(0, 'base', 0, 1), info(0, 'base', 1, 0), info(0, 'base', 1, 1),
    info(0, 'highres', 0, 0), info(0, 'highres', 0, 1), info(0, 'highres', 0, 2), info(0, 'newline', 0, 3),
    null,
    info(1, 'base', 0, 0), info(1, 'base', 1, 0), info(1, 'base', 0, 1), info(1, 'base', 1, 1)];
  return { length: entries.length, entries, runs: [{ image: 0, start: 1, end: 9 }, { image: 1, start: 10, end: 14 }] };
}

test('grids in raster order, newlines excluded, per image', () => {
  const m = map();
  assert.deepEqual(viewGrid(m, 'base', 0), { rows: 2, cols: 2, positions: [1, 2, 3, 4] });
  assert.deepEqual(viewGrid(m, 'highres', 0), { rows: 1, cols: 3, positions: [5, 6, 7] });
  assert.deepEqual(viewGrid(m, 'base', 1), { rows: 2, cols: 2, positions: [10, 12, 11, 13] });
  assert.equal(viewGrid(m, 'highres', 1), undefined);
  assert.deepEqual(viewGrids(m, 'base').map((g) => g.positions), [[1, 2, 3, 4], [10, 12, 11, 13]]);
  assert.throws(() => viewGrids(m, 'highres'), /image 1 of the prompt has no "highres" tokens/);
  assert.deepEqual(Object.keys(imageViewGrids(m, ['base', 'highres'], 1)), ['base']);
});

test('tokens that do not fill a grid, or repeat a cell, are refused naming the image and view', () => {
  const m = map();
  const holey: TokenMap = { ...m, entries: m.entries.map((e, p) => (p === 2 ? null : e)) };
  assert.throws(() => viewGrid(holey, 'base', 0), /image 0: 3 "base" tokens do not fill a 2 x 2 grid/);
  const twice: TokenMap = { ...m, entries: m.entries.map((e, p) => (p === 2 ? info(0, 'base', 0, 0) : p === 4 ? info(0, 'base', 1, 1) : e)) };
  assert.throws(() => viewGrid(twice, 'base', 0), /do not fill|repeat a grid cell/);
  assert.throws(() => viewGrid(m, 'base', 5), /no image 5/);
});
