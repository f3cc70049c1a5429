// The lmms-lab RefCOCO/RefCOCO+/RefCOCOg parquet copy: <root>/[data/]<split>-*.parquet with columns question_id, image
// {bytes, path}, question, answer (list of expressions), segmentation (ONE flat polygon), bbox [x,y,w,h], iscrowd,
// file_name. Masks rasterise that single polygon at the image's size (lossy for multi-part objects).
import { join } from 'node:path';
import { KvlensInputError } from '../../util/errors.js';
import { decodeSegmentation } from '../coco-mask.js';
import { imageSize, isDirectory, listDir, loadEach } from '../io.js';
import { cellNumberList, cellString, cellStringList, imageFromStruct, openParquet, parquetRows, requireColumns } from '../parquet.js';
import type { LoaderOptions, RefCocoParquetSample } from '../types.js';

export interface RefCocoParquetOptions extends LoaderOptions { split?: string }

export async function findSplitParquets(root: string, split: string): Promise<string[]> {
  const dirs = [root, join(root, 'data')];
  const files: string[] = [];
  for (const d of dirs) {
    if (!(await isDirectory(d))) continue;
    for (const n of await listDir(d, 'parquet folder')) if (n.startsWith(`${split}-`) && n.endsWith('.parquet')) files.push(join(d, n));
  }
  if (files.length === 0) throw new KvlensInputError(`no ${split}-*.parquet in ${root} or ${join(root, 'data')}`, root);
  return files;
}

export async function* iterateRefCocoParquet(root: string, opts: RefCocoParquetOptions = {}): AsyncGenerator<RefCocoParquetSample> {
  const split = opts.split ?? 'val';
  const files = await findSplitParquets(root, split);
  async function* rows() {
    for (const f of files) {
      const h = await openParquet(f, 'RefCOCO parquet');
      requireColumns(h, ['question_id', 'image', 'question', 'answer', 'segmentation', 'bbox']);
      for await (const r of parquetRows(h)) yield { ...r, file: f };
    }
  }
  yield* loadEach(rows(), async ({ row, index, file }) => {
    const where = `${file} row ${index}`;
    const image = imageFromStruct(row.image, `${where} image`);
    if (!image) throw new KvlensInputError('image is null', where);
    const { width, height } = await imageSize(image);
    const poly = cellNumberList(row.segmentation, 'segmentation', where);
    const bbox = cellNumberList(row.bbox, 'bbox', where);
    if (bbox.length !== 4) throw new KvlensInputError(`bbox has ${bbox.length} numbers, expected 4`, where);
    return {
      dataset: 'refcoco-parquet', questionId: cellString(row.question_id, 'question_id', where), split, image, width, height,
      question: cellString(row.question, 'question', where), answers: cellStringList(row.answer, 'answer', where),
      bbox: [bbox[0], bbox[1], bbox[2], bbox[3]], iscrowd: Number(row.iscrowd ?? 0),
      fileName: cellString(row.file_name, 'file_name', where, true), mask: decodeSegmentation([poly], height, width, where),
    };
  }, opts);
}
