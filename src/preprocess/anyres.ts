// Anyres geometry of LLaVA-NeXT / LLaVA-OneVision, reproducing transformers v4.46.1 rounding by rounding:
// which pinpoint resolution an image gets, how it is resized and padded onto that canvas, how the canvas is cut
// into tiles, which rows/columns of the patch grid survive `unpad_image`, and the `anyres_max_N` downsample.
// Pure functions on sizes only; the pixel work lives in llava-onevision-image.ts and the feature packing in
// src/models/llava_onevision. Every size here is { height, width } in pixels unless it says "patches".
//
// Conventions that trip people up:
// - HF pinpoints are [height, width] (config `image_grid_pinpoints`), and so is `image_sizes`.
// - transformers 4.46 pads (target - new) // 2 on BOTH sides of an axis, so an odd difference leaves the canvas
//   one pixel short of the pinpoint (image C of the fixtures: 56x79 -> canvas 56x111). divide_to_patches then
//   yields a narrower last tile, which the processor bicubic-resizes back to the tile size.

/** Height and width in pixels (or in patches where the name says so). */
export interface Size {
  readonly height: number;
  readonly width: number;
}

/** A [height, width] pair exactly as HF stores pinpoints in config.json / preprocessor_config.json. */
export type Pinpoint = readonly [number, number];

/** Python's float floor division `a // b` (math on doubles, incl. its fmod-based correction), for b > 0. */
export function pyFloorDiv(a: number, b: number): number {
  if (Number.isInteger(a) && Number.isInteger(b)) return Math.floor(a / b);
  let mod = a % b; // C fmod: exact
  let div = (a - mod) / b;
  if (mod !== 0 && (b < 0) !== (mod < 0)) {
    mod += b;
    div -= 1;
  }
  if (div === 0) return 0;
  let floorDiv = Math.floor(div);
  if (div - floorDiv > 0.5) floorDiv += 1;
  return floorDiv;
}

/**
 * HF `select_best_resolution`: the pinpoint that keeps the most original pixels after an aspect-preserving
 * fit (capped at the original pixel count), ties broken by the least wasted canvas area; first wins on a full tie.
 */
export function selectBestResolution(original: Size, pinpoints: readonly Pinpoint[]): Size {
  if (pinpoints.length === 0) throw new Error('selectBestResolution: empty pinpoint list');
  let best: Size | undefined;
  let maxEffective = 0;
  let minWasted = Infinity;
  for (const [height, width] of pinpoints) {
    const scale = Math.min(width / original.width, height / original.height);
    const fitW = Math.trunc(original.width * scale);
    const fitH = Math.trunc(original.height * scale);
    const effective = Math.min(fitW * fitH, original.width * original.height);
    const wasted = width * height - effective;
    if (effective > maxEffective || (effective === maxEffective && wasted < minWasted)) {
      maxEffective = effective;
      minWasted = wasted;
      best = { height, width };
    }
  }
  // With positive sizes some pinpoint always has effective > 0.
  return best ?? { height: pinpoints[0][0], width: pinpoints[0][1] };
}

/** HF `_get_patch_output_size`: the aspect-preserving size that fits `image` inside `target` (ceil on the free axis). */
export function fitInside(image: Size, target: Size): Size {
  const scaleW = target.width / image.width;
  const scaleH = target.height / image.height;
  if (scaleW < scaleH) {
    return { height: Math.min(Math.ceil(image.height * scaleW), target.height), width: target.width };
  }
  return { height: target.height, width: Math.min(Math.ceil(image.width * scaleH), target.width) };
}

/** Zero padding around the resized image on the anyres canvas (pixels), and the resulting canvas size. */
export interface CanvasPadding {
  readonly top: number;
  readonly bottom: number;
  readonly left: number;
  readonly right: number;
  /** resized + padding; one pixel short of the pinpoint on an axis whose free space is odd (4.46 quirk). */
  readonly canvas: Size;
}

/**
 * transformers 4.46 `_pad_for_patching`: it recomputes the fit on the already-resized image (idempotent) and pads
 * (target - fit) // 2 on both sides of each axis.
 */
export function paddingForPatching(resized: Size, target: Size): CanvasPadding {
  const fit = fitInside(resized, target);
  const padX = Math.floor((target.width - fit.width) / 2);
  const padY = Math.floor((target.height - fit.height) / 2);
  return {
    top: padY, bottom: padY, left: padX, right: padX,
    canvas: { height: resized.height + 2 * padY, width: resized.width + 2 * padX },
  };
}

/** One high-resolution tile: the canvas rectangle divide_to_patches cuts (may be narrower than the tile size). */
export interface CanvasTile {
  readonly row: number;
  readonly col: number;
  /** canvas pixels [y0, y1) x [x0, x1); the tile is resized to tileSize x tileSize when smaller. */
  readonly y0: number;
  readonly y1: number;
  readonly x0: number;
  readonly x1: number;
}

/** HF `divide_to_patches`: row-major tiles of `tileSize` over the canvas, the last row/column possibly cut short. */
export function divideCanvas(canvas: Size, tileSize: number): CanvasTile[] {
  const tiles: CanvasTile[] = [];
  let row = 0;
  for (let y = 0; y < canvas.height; y += tileSize, row++) {
    let col = 0;
    for (let x = 0; x < canvas.width; x += tileSize, col++) {
      tiles.push({ row, col, y0: y, y1: Math.min(y + tileSize, canvas.height), x0: x, x1: Math.min(x + tileSize, canvas.width) });
    }
  }
  return tiles;
}

/** Rows/columns of the patch grid `unpad_image` keeps (in patches, relative to the full grid). */
export interface UnpadWindow {
  readonly top: number;
  readonly left: number;
  readonly rows: number;
  readonly cols: number;
}

/**
 * HF `unpad_image` on a [rows, cols] patch grid (4.46 arithmetic, no round(..., 7)): the axis that the original
 * image does not fill loses (grid - int(original * scale)) // 2 rows or columns on each side.
 */
export function unpadWindow(original: Size, grid: Size): UnpadWindow {
  const originalAspect = original.width / original.height;
  const currentAspect = grid.width / grid.height;
  if (originalAspect > currentAspect) {
    const scale = grid.width / original.width;
    const newHeight = Math.trunc(original.height * scale);
    const pad = Math.floor((grid.height - newHeight) / 2);
    return { top: pad, left: 0, rows: grid.height - 2 * pad, cols: grid.width };
  }
  const scale = grid.height / original.height;
  const newWidth = Math.trunc(original.width * scale);
  const pad = Math.floor((grid.width - newWidth) / 2);
  return { top: 0, left: pad, rows: grid.height, cols: grid.width - 2 * pad };
}

/** Result of the anyres_max_N rule on an unpadded grid [rows, cols] (patches). */
export interface AnyresDownsample {
  /** sqrt(rows * cols / (N * patchesPerSide^2)) */
  readonly ratio: number;
  /** ratio > 1.1: the grid is bilinear-resized (torch interpolate, align_corners=False) to `rows` x `cols`. */
  readonly downsampled: boolean;
  readonly rows: number;
  readonly cols: number;
}

/** The anyres_max_N rule of LLaVA-OneVision (modeling and processor agree): shrink grids above ~N tiles of tokens. */
export function anyresMaxDownsample(grid: Size, maxTiles: number, patchesPerSide: number): AnyresDownsample {
  const ratio = Math.sqrt((grid.height * grid.width) / (maxTiles * patchesPerSide * patchesPerSide));
  if (ratio > 1.1) {
    return { ratio, downsampled: true, rows: Math.trunc(pyFloorDiv(grid.height, ratio)), cols: Math.trunc(pyFloorDiv(grid.width, ratio)) };
  }
  return { ratio, downsampled: false, rows: grid.height, cols: grid.width };
}

/** Parse "anyres_max_9" -> 9 (the number of tiles' worth of tokens kept before downsampling). */
export function parseAnyresMax(visionAspectRatio: string): number {
  const m = /^anyres_max_(\d+)$/.exec(visionAspectRatio);
  if (!m) throw new Error(`vision_aspect_ratio "${visionAspectRatio}" is not of the form anyres_max_<N>`);
  return Number(m[1]);
}

export interface AnyresOptions {
  /** Candidate [height, width] canvases in pixels. */
  readonly pinpoints: readonly Pinpoint[];
  /** Tile (= vision tower input) side in pixels, e.g. 384. */
  readonly tileSize: number;
  /** Vision patch side in pixels, e.g. 14; floor(tileSize / patchSize) patches per tile side. */
  readonly patchSize: number;
  /** N of anyres_max_N. */
  readonly maxTiles: number;
}

/** Everything the processor, the feature packer and the token map need to know about one image's anyres layout. */
export interface AnyresLayout {
  readonly original: Size;
  /** chosen pinpoint (pixels) */
  readonly bestResolution: Size;
  /** aspect-preserving fit inside bestResolution (pixels) */
  readonly resized: Size;
  readonly padding: CanvasPadding;
  /** high-resolution tiles in row-major order (pixel_values tiles 1..n; tile 0 is the base view) */
  readonly tiles: readonly CanvasTile[];
  /** tile grid [rows, cols] = bestResolution / tileSize (what the model uses; equals the tiles' grid) */
  readonly tileGrid: Size;
  readonly patchesPerSide: number;
  /** full feature grid in patches: tileGrid * patchesPerSide */
  readonly fullGrid: Size;
  readonly unpad: UnpadWindow;
  readonly downsample: AnyresDownsample;
  /** final high-res grid in patches (after unpad and downsample); each row is followed by one newline token */
  readonly finalGrid: Size;
}

export function anyresLayout(original: Size, opts: AnyresOptions): AnyresLayout {
  if (!(original.height > 0 && original.width > 0)) throw new Error(`anyresLayout: bad image size ${original.height}x${original.width}`);
  const bestResolution = selectBestResolution(original, opts.pinpoints);
  const resized = fitInside(original, bestResolution);
  const padding = paddingForPatching(resized, bestResolution);
  const tiles = divideCanvas(padding.canvas, opts.tileSize);
  const tileGrid = { height: Math.floor(bestResolution.height / opts.tileSize), width: Math.floor(bestResolution.width / opts.tileSize) };
  // SigLIP's stride-patchSize conv drops a remainder (384 / 14 -> 27 patches covering 378 px).
  const patchesPerSide = Math.floor(opts.tileSize / opts.patchSize);
  const fullGrid = { height: tileGrid.height * patchesPerSide, width: tileGrid.width * patchesPerSide };
  const unpad = unpadWindow(original, fullGrid);
  const downsample = anyresMaxDownsample({ height: unpad.rows, width: unpad.cols }, opts.maxTiles, patchesPerSide);
  return {
    original, bestResolution, resized, padding, tiles, tileGrid, patchesPerSide, fullGrid, unpad, downsample,
    finalGrid: { height: downsample.rows, width: downsample.cols },
  };
}

/** Token counts of one image: base view + high-res grid rows x (cols + 1 newline). */
export interface AnyresTokenCount {
  readonly base: number;
  readonly grid: number;
  readonly newlines: number;
  readonly total: number;
}

/**
 * `baseTokens` is the base view's token count (patchesPerSide^2 for SigLIP). The HF processor subtracts one from
 * the total when vision_feature_select_strategy is "default"; pass `selectDefault` to reproduce that.
 */
export function anyresTokenCount(layout: AnyresLayout, baseTokens = layout.patchesPerSide ** 2, selectDefault = false): AnyresTokenCount {
  const grid = layout.finalGrid.height * layout.finalGrid.width;
  const newlines = layout.finalGrid.height;
  return { base: baseTokens, grid, newlines, total: baseTokens + grid + newlines - (selectDefault ? 1 : 0) };
}
