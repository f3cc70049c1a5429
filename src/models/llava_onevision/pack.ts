// LLaVA-OneVision's pack_image_features, in JS: per image, the base tile's tokens, then the high-resolution
// tiles re-assembled into one feature map, cropped to the image's content (unpad), shrunk bilinearly when it
// holds more than about anyres_max_N tiles' worth of tokens, with image_newline appended after every row.
// The geometry (grid shape, crop, target size) is decided in src/preprocess/anyres.ts; this file moves features.

import { resizeBilinear } from './bilinear.js';

/** Where the content of one image lies in its tile grid, in feature (patch) units. */
export interface PackGeometry {
  /** Tiles per column / row of the high-resolution grid (base tile excluded). */
  readonly gridRows: number;
  readonly gridCols: number;
  /** Rows/columns of the assembled feature map kept after unpadding: [start, end). */
  readonly rowStart: number;
  readonly rowEnd: number;
  readonly colStart: number;
  readonly colEnd: number;
  /** Target size of the bilinear downsample, or undefined to keep the unpadded map as is. */
  readonly resizeTo?: { readonly rows: number; readonly cols: number };
}

/**
 * Pack one image. `tiles` is the projector output [nTiles, side*side, dModel] (tile 0 = base tile), `newline` the
 * image_newline vector [dModel]. Returns [imageTokens, dModel] flattened. A single-tile image gives its tokens
 * plus one newline (what transformers does for images that were not tiled).
 */
export function packImage(tiles: Float32Array, nTiles: number, side: number, dModel: number, newline: Float32Array, g: PackGeometry | undefined): Float32Array {
  const tokens = side * side;
  if (tiles.length !== nTiles * tokens * dModel) {
    throw new Error(`packImage: features have ${tiles.length} values, [${nTiles}, ${tokens}, ${dModel}] needs ${nTiles * tokens * dModel}`);
  }
  const base = tiles.subarray(0, tokens * dModel);
  if (nTiles === 1) {
    const out = new Float32Array((tokens + 1) * dModel);
    out.set(base);
    out.set(newline, tokens * dModel);
    return out;
  }
  if (!g) throw new Error('packImage: a tiled image needs its anyres geometry');
  if (g.gridRows * g.gridCols !== nTiles - 1) {
    throw new Error(`packImage: ${nTiles - 1} grid tiles cannot form the ${g.gridRows}x${g.gridCols} grid chosen for this image`);
  }
  // Assemble the grid channels-last: feature map pixel (r, c) is token (r % side, c % side) of tile (r / side, c / side).
  const fullRows = g.gridRows * side;
  const fullCols = g.gridCols * side;
  let rows = g.rowEnd - g.rowStart;
  let cols = g.colEnd - g.colStart;
  if (g.rowStart < 0 || g.colStart < 0 || g.rowEnd > fullRows || g.colEnd > fullCols || rows < 1 || cols < 1) {
    throw new Error(`packImage: unpad window rows ${g.rowStart}..${g.rowEnd}, cols ${g.colStart}..${g.colEnd} does not fit a ${fullRows}x${fullCols} map`);
  }
  let map: Float32Array = new Float32Array(rows * cols * dModel); // [rows, cols, dModel]
  for (let r = 0; r < rows; r++) {
    const fr = r + g.rowStart;
    for (let c = 0; c < cols; c++) {
      const fc = c + g.colStart;
      const tile = 1 + Math.floor(fr / side) * g.gridCols + Math.floor(fc / side);
      const token = (fr % side) * side + (fc % side);
      const src = (tile * tokens + token) * dModel;
      map.set(tiles.subarray(src, src + dModel), (r * cols + c) * dModel);
    }
  }
  if (g.resizeTo) {
    map = resizeBilinear(map, rows, cols, dModel, g.resizeTo.rows, g.resizeTo.cols);
    rows = g.resizeTo.rows;
    cols = g.resizeTo.cols;
  }
  // [base tokens] then each row followed by the newline vector.
  const out = new Float32Array((tokens + rows * (cols + 1)) * dModel);
  out.set(base);
  let o = tokens * dModel;
  for (let r = 0; r < rows; r++) {
    out.set(map.subarray(r * cols * dModel, (r + 1) * cols * dModel), o);
    o += cols * dModel;
    out.set(newline, o);
    o += dModel;
  }
  return out;
}
