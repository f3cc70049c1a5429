// BLINK (HF BLINK-Benchmark/BLINK): <Config>/<split>-*.parquet per sub-task, columns idx, question, sub_task,
// image_1..image_4 (struct {bytes, path}, null when unused), choices, answer ("(A)"), prompt, explanation.
import { join } from 'node:path';
import { describeValue, KvlensInputError } from '../../util/errors.js';
import { isDirectory, listDir, loadEach } from '../io.js';
import { cellString, cellStringList, imageFromStruct, openParquet, parquetRows, requireColumns } from '../parquet.js';
import type { BlinkSample, ImageSource, LoaderOptions } from '../types.js';

export const BLINK_SUBTASKS = [
  'Art_Style', 'Counting', 'Forensic_Detection', 'Functional_Correspondence', 'IQ_Test', 'Jigsaw', 'Multi-view_Reasoning',
  'Object_Localization', 'Relative_Depth', 'Relative_Reflectance', 'Semantic_Correspondence', 'Spatial_Relation',
  'Visual_Correspondence', 'Visual_Similarity',
];

export interface BlinkOptions extends LoaderOptions { split?: 'val' | 'test'; subtasks?: string[] }

export async function listBlinkFiles(root: string, opts: BlinkOptions = {}): Promise<{ subtask: string; path: string }[]> {
  const split = opts.split ?? 'val';
  const out: { subtask: string; path: string }[] = [];
  for (const sub of await listDir(root, 'BLINK root')) {
    if (opts.subtasks && !opts.subtasks.includes(sub)) continue;
    if (!(await isDirectory(join(root, sub)))) continue;
    for (const n of await listDir(join(root, sub), `BLINK ${sub}`)) {
      if (n.startsWith(`${split}-`) && n.endsWith('.parquet')) out.push({ subtask: sub, path: join(root, sub, n) });
    }
  }
  if (opts.subtasks) {
    const missing = opts.subtasks.filter((s) => !out.some((f) => f.subtask === s));
    if (missing.length) throw new KvlensInputError(`no ${split}-*.parquet for sub-task(s) ${missing.join(', ')}`, root);
  }
  if (out.length === 0) throw new KvlensInputError(`no <SubTask>/${split}-*.parquet files`, root);
  return out;
}

export async function* iterateBlink(root: string, opts: BlinkOptions = {}): AsyncGenerator<BlinkSample> {
  const split = opts.split ?? 'val';
  const files = await listBlinkFiles(root, opts);
  async function* rows() {
    for (const f of files) {
      const h = await openParquet(f.path, `BLINK ${f.subtask} parquet`);
      requireColumns(h, ['idx', 'question', 'image_1', 'choices', 'answer', 'prompt']);
      for await (const r of parquetRows(h)) yield { ...r, file: f };
    }
  }
  yield* loadEach(rows(), async ({ row, index, file }) => {
    const where = `${file.path} row ${index}`;
    const images = [1, 2, 3, 4].map((k) => imageFromStruct(row[`image_${k}`], `${where} image_${k}`)) as BlinkSample['images'];
    if (!images[0]) throw new KvlensInputError('image_1 is null; every BLINK row has at least one image', where);
    const firstNull = images.findIndex((im: ImageSource | null) => im === null);
    if (firstNull >= 0 && images.slice(firstNull).some((im) => im !== null)) {
      throw new KvlensInputError(`image_${firstNull + 1} is null but a later image is present`, where);
    }
    const choices = cellStringList(row.choices, 'choices', where);
    const answer = cellString(row.answer, 'answer', where, true);
    if (split === 'val' && !/^\([A-Z]\)$/.test(answer)) throw new KvlensInputError(`answer must look like "(A)", got ${describeValue(answer)}`, where);
    if (answer && answer.charCodeAt(1) - 65 >= choices.length) {
      throw new KvlensInputError(`answer ${answer} is beyond the ${choices.length} choices`, where);
    }
    return {
      dataset: 'blink', idx: cellString(row.idx, 'idx', where), subTask: cellString(row.sub_task, 'sub_task', where, true) || file.subtask, split,
      question: cellString(row.question, 'question', where), images, choices, answer, prompt: cellString(row.prompt, 'prompt', where),
      explanation: cellString(row.explanation, 'explanation', where, true),
    };
  }, opts);
}
