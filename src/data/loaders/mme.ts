// MME (MME_Benchmark_release_version[/MME_Benchmark]/<task>/...), two shapes per task folder:
//  SPLIT: <task>/images/<stem>.<ext> + <task>/questions_answers_YN/<stem>.txt
//  FLAT:  <task>/<stem>.<ext> next to <task>/<stem>.txt
// Each .txt holds `question<TAB>Yes|No` lines (two per image; CRLF and trailing blank lines tolerated).
import { extname, join } from 'node:path';
import { describeValue, KvlensInputError } from '../../util/errors.js';
import { isDirectory, isFile, listDir, loadEach, readLines } from '../io.js';
import type { LoaderOptions, MmeSample } from '../types.js';

export const MME_PERCEPTION = ['existence', 'count', 'position', 'color', 'posters', 'celebrity', 'scene', 'landmark', 'artwork', 'OCR'];
export const MME_COGNITION = ['commonsense_reasoning', 'numerical_calculation', 'text_translation', 'code_reasoning'];
const IMAGE_EXTS = ['.jpg', '.png', '.jpeg', '.JPG', '.PNG'];

export interface MmeOptions extends LoaderOptions { tasks?: string[] }
export interface MmeEntry { task: string; stem: string; txtPath: string; imageDir: string; layout: 'split' | 'flat' }

/** The release folder, possibly with an extra MME_Benchmark/ level. */
export async function mmeBase(root: string): Promise<string> {
  return (await isDirectory(join(root, 'MME_Benchmark'))) ? join(root, 'MME_Benchmark') : root;
}

export async function listMme(root: string, opts: MmeOptions = {}): Promise<MmeEntry[]> {
  const base = await mmeBase(root);
  const entries: MmeEntry[] = [];
  const tasks = (await listDir(base, 'MME release folder')).filter((t) => !opts.tasks || opts.tasks.includes(t));
  let taskCount = 0;
  for (const task of tasks) {
    const dir = join(base, task);
    if (!(await isDirectory(dir))) continue;
    taskCount++;
    const split = await isDirectory(join(dir, 'images')) && await isDirectory(join(dir, 'questions_answers_YN'));
    const txtDir = split ? join(dir, 'questions_answers_YN') : dir;
    for (const name of await listDir(txtDir, `questions of ${task}`)) {
      if (extname(name) !== '.txt') continue;
      entries.push({ task, stem: name.slice(0, -4), txtPath: join(txtDir, name), imageDir: split ? join(dir, 'images') : dir, layout: split ? 'split' : 'flat' });
    }
  }
  if (taskCount === 0) throw new KvlensInputError('no task folders (existence/, count/, ...)', base);
  return entries;
}

/** The two (or more) questions of one image. */
export async function loadMmeImage(e: MmeEntry): Promise<MmeSample[]> {
  let imageFile: string | null = null;
  for (const ext of IMAGE_EXTS) if (await isFile(join(e.imageDir, e.stem + ext))) { imageFile = e.stem + ext; break; }
  if (!imageFile) throw new KvlensInputError(`no image ${e.stem}.{jpg,png} for this question file`, e.txtPath);
  const lines = await readLines(e.txtPath, 'MME questions');
  if (lines.length === 0) throw new KvlensInputError('no questions', e.txtPath);
  return lines.map((line, i) => {
    const tab = line.lastIndexOf('\t');
    const answer = tab < 0 ? '' : line.slice(tab + 1).trim();
    if (tab < 0 || (answer !== 'Yes' && answer !== 'No')) {
      throw new KvlensInputError(`line ${i + 1}: expected "question<TAB>Yes|No", got ${describeValue(line)}`, e.txtPath);
    }
    return {
      dataset: 'mme', task: e.task, questionId: `${e.task}/${imageFile}`, image: { kind: 'path', path: join(e.imageDir, imageFile as string) },
      question: line.slice(0, tab).trim(), answer,
    };
  });
}

export async function* iterateMme(root: string, opts: MmeOptions = {}): AsyncGenerator<MmeSample> {
  let n = 0;
  for await (const group of loadEach(await listMme(root, opts), loadMmeImage, { ...opts, limit: undefined })) {
    for (const q of group) {
      if (opts.limit !== undefined && n >= opts.limit) return;
      n++;
      yield q;
    }
  }
}
