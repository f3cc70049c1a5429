// MSRC co-segmentation groups. Two layouts:
//  * MSRC-v2 (`Images/<stem>.bmp`, `GroundTruth/<stem>_GT.bmp` colour-coded) + a checked-in group manifest
//    `coseg_groups.json` = {"groups": {"<name>": {"class": "<msrc class>", "images": ["<stem>", ...]}}};
//    foreground = pixels whose GT colour exactly equals the group class colour.
//  * generic co-seg (`groups/<name>/images/<stem>.*`, `groups/<name>/masks/<stem>.{png,bmp}`), 0/255 or 0/1 masks:
//    foreground = value > 127 when the mask holds values above 1, else value > 0.
import { extname, join } from 'node:path';
import { KvlensInputError } from '../../util/errors.js';
import { decodeBmp } from '../bmp.js';
import {
  checkMaskMatchesImage, expectArray, expectObject, expectString, isDirectory, isFile, listDir, loadEach, readBytes, readJson,
} from '../io.js';
import { decodeLabelPng } from '../png.js';
import type { CosegSample, LabelGrid, LoaderOptions } from '../types.js';

export const MSRC_COLOURS: Record<string, [number, number, number]> = {
  void: [0, 0, 0], building: [128, 0, 0], grass: [0, 128, 0], tree: [128, 128, 0], cow: [0, 0, 128], horse: [128, 0, 128],
  sheep: [0, 128, 128], sky: [128, 128, 128], mountain: [64, 0, 0], aeroplane: [192, 0, 0], water: [64, 128, 0],
  face: [192, 128, 0], car: [64, 0, 128], bicycle: [192, 0, 128], flower: [64, 128, 128], sign: [192, 128, 128],
  bird: [0, 64, 0], book: [128, 64, 0], chair: [0, 192, 0], road: [128, 64, 128], cat: [0, 192, 128], dog: [128, 192, 128],
  body: [64, 64, 0], boat: [192, 64, 0],
};

export const MSRC_MANIFEST = 'coseg_groups.json';
const IMAGE_EXTS = ['.jpg', '.jpeg', '.png', '.bmp'];

export interface MsrcOptions extends LoaderOptions { manifest?: string; groups?: string[] }

export type MsrcEntry =
  | { layout: 'msrc-v2'; group: string; className: string; stem: string }
  | { layout: 'groups'; group: string; stem: string; imagePath: string; maskPath: string };

export async function detectMsrcLayout(root: string): Promise<'msrc-v2' | 'groups'> {
  if (await isDirectory(join(root, 'groups'))) return 'groups';
  if (await isDirectory(join(root, 'Images')) && await isDirectory(join(root, 'GroundTruth'))) return 'msrc-v2';
  throw new KvlensInputError('neither groups/ (generic co-seg layout) nor Images/ + GroundTruth/ (MSRC-v2 layout) found', root);
}

async function listV2(root: string, opts: MsrcOptions): Promise<MsrcEntry[]> {
  const manifestPath = opts.manifest ?? join(root, MSRC_MANIFEST);
  const groups = expectObject(expectObject(await readJson(manifestPath, 'MSRC co-seg group manifest'), manifestPath, 'manifest').groups,
    manifestPath, '"groups"');
  const out: MsrcEntry[] = [];
  for (const [group, spec] of Object.entries(groups)) {
    if (opts.groups && !opts.groups.includes(group)) continue;
    const where = `${manifestPath} groups.${group}`;
    const g = expectObject(spec, where, 'group');
    const className = expectString(g, 'class', where);
    if (!MSRC_COLOURS[className] || className === 'void') throw new KvlensInputError(`unknown MSRC class "${className}"`, where);
    for (const stem of expectArray(g, 'images', where)) {
      if (typeof stem !== 'string') throw new KvlensInputError('images must be strings', where);
      out.push({ layout: 'msrc-v2', group, className, stem });
    }
  }
  return out;
}

async function listGroups(root: string, opts: MsrcOptions): Promise<MsrcEntry[]> {
  const out: MsrcEntry[] = [];
  for (const group of await listDir(join(root, 'groups'), 'co-seg groups')) {
    if (opts.groups && !opts.groups.includes(group)) continue;
    const imgDir = join(root, 'groups', group, 'images');
    const maskDir = join(root, 'groups', group, 'masks');
    const masks = await listDir(maskDir, `masks of group ${group}`);
    for (const name of await listDir(imgDir, `images of group ${group}`)) {
      if (!IMAGE_EXTS.includes(extname(name).toLowerCase())) continue;
      const stem = name.slice(0, -extname(name).length);
      const maskName = masks.find((m) => m.slice(0, -extname(m).length) === stem && ['.png', '.bmp'].includes(extname(m).toLowerCase()));
      out.push({ layout: 'groups', group, stem, imagePath: join(imgDir, name), maskPath: join(maskDir, maskName ?? `${stem}.png`) });
    }
  }
  return out;
}

export async function listMsrc(root: string, opts: MsrcOptions = {}): Promise<MsrcEntry[]> {
  return (await detectMsrcLayout(root)) === 'groups' ? listGroups(root, opts) : listV2(root, opts);
}

/** A generic binary mask file (PNG grey/palette, or BMP) -> 0/1. */
export function binaryFromMaskFile(bytes: Uint8Array, path: string): LabelGrid {
  let grid: LabelGrid;
  if (path.toLowerCase().endsWith('.bmp')) {
    const rgb = decodeBmp(bytes, path);
    const data = new Uint8Array(rgb.width * rgb.height);
    for (let i = 0; i < data.length; i++) data[i] = Math.max(rgb.data[3 * i], rgb.data[3 * i + 1], rgb.data[3 * i + 2]);
    grid = { width: rgb.width, height: rgb.height, data };
  } else {
    grid = decodeLabelPng(bytes, path);
  }
  let max = 0;
  for (let i = 0; i < grid.data.length; i++) if (grid.data[i] > max) max = grid.data[i];
  const threshold = max > 1 ? 127 : 0;
  const out = new Uint8Array(grid.data.length);
  for (let i = 0; i < out.length; i++) out[i] = grid.data[i] > threshold ? 1 : 0;
  return { width: grid.width, height: grid.height, data: out };
}

/** MSRC-v2 colour GT -> 0/1 for one class, by exact RGB match. */
export function binaryFromMsrcGt(bytes: Uint8Array, path: string, className: string): LabelGrid {
  const rgb = decodeBmp(bytes, path);
  const [r, g, b] = MSRC_COLOURS[className];
  const out = new Uint8Array(rgb.width * rgb.height);
  for (let i = 0; i < out.length; i++) out[i] = rgb.data[3 * i] === r && rgb.data[3 * i + 1] === g && rgb.data[3 * i + 2] === b ? 1 : 0;
  return { width: rgb.width, height: rgb.height, data: out };
}

async function findImage(dir: string, stem: string): Promise<string> {
  for (const ext of ['.bmp', '.jpg', '.png']) if (await isFile(join(dir, stem + ext))) return join(dir, stem + ext);
  throw new KvlensInputError(`no image ${stem}.{bmp,jpg,png}`, dir);
}

export async function loadMsrc(root: string, e: MsrcEntry): Promise<CosegSample> {
  let imagePath: string, maskPath: string, mask: LabelGrid;
  if (e.layout === 'msrc-v2') {
    imagePath = await findImage(join(root, 'Images'), e.stem);
    maskPath = join(root, 'GroundTruth', `${e.stem}_GT.bmp`);
    mask = binaryFromMsrcGt(await readBytes(maskPath, 'MSRC ground truth'), maskPath, e.className);
  } else {
    imagePath = e.imagePath;
    maskPath = e.maskPath;
    mask = binaryFromMaskFile(await readBytes(maskPath, 'co-seg mask'), maskPath);
  }
  const image = { kind: 'path' as const, path: imagePath };
  await checkMaskMatchesImage(mask, maskPath, image);
  return { dataset: 'msrc', group: e.group, id: e.stem, image, mask };
}

export async function* iterateMsrc(root: string, opts: MsrcOptions = {}): AsyncGenerator<CosegSample> {
  yield* loadEach(await listMsrc(root, opts), (e) => loadMsrc(root, e), opts);
}
