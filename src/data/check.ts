// `kvlens data check`: walks a dataset root with its loader in tolerant mode and reports what is missing or malformed,
// with counts. Never throws on bad input: a problem that stops the listing itself (missing folder, unreadable list,
// truncated annotation file, forbidden pickle opcode) is reported as fatal.
import { KvlensInputError } from '../util/errors.js';
import { iterateDataset, type GenericDatasetOptions } from './index.js';
import { BDD_CLASSES } from './loaders/bdd10k.js';
import { VOC_CLASSES } from './loaders/pascal5i.js';
import type { AnySample, DatasetName, LabelGrid } from './types.js';

export interface CheckReport {
  dataset: DatasetName;
  root: string;
  /** Samples that loaded (for DAVIS: sequences; for MME: questions). */
  samples: number;
  /** Tallies by a dataset-specific key (class, split, task, answer, ...). */
  counts: Record<string, number>;
  problems: string[];
  fatal: string | null;
}

function labelsOutside(mask: LabelGrid, allowed: (v: number) => boolean): number[] {
  const bad = new Set<number>();
  for (let i = 0; i < mask.data.length && bad.size < 5; i++) if (!allowed(mask.data[i])) bad.add(mask.data[i]);
  return [...bad];
}

/** Content checks beyond what the loader enforces, plus the tally key(s) of a sample. */
async function inspect(s: AnySample): Promise<{ keys: string[]; problems: string[] }> {
  switch (s.dataset) {
    case 'pascal5i': {
      const bad = labelsOutside(s.mask, (v) => v <= 20 || v === 255);
      const present = s.mask.data.includes(s.classId + 1);
      return {
        keys: [`class:${VOC_CLASSES[s.classId]}`],
        problems: [
          ...(bad.length ? [`${s.id}: mask values ${bad.join(',')} are not VOC classes 0..20 or 255`] : []),
          ...(present ? [] : [`${s.id}: listed for class ${s.classId + 1} but its mask has no such pixel`]),
        ],
      };
    }
    case 'bdd10k': {
      const bad = labelsOutside(s.mask, (v) => v < BDD_CLASSES.length || v === 255);
      return { keys: [`split:${s.split}`], problems: bad.length ? [`${s.id}: mask values ${bad.join(',')} are not train ids 0..18 or 255`] : [] };
    }
    case 'imagenet-s': {
      const max = s.variant;
      const bad = labelsOutside(s.mask, (v) => v <= max || v === 1000);
      return { keys: [`class:${s.wnid}`], problems: bad.length ? [`${s.id}: mask classes ${bad.join(',')} exceed ${max} (and are not 1000 = ignore)`] : [] };
    }
    case 'msrc': return { keys: [`group:${s.group}`], problems: s.mask.data.includes(1) ? [] : [`${s.group}/${s.id}: empty foreground mask`] };
    case 'davis': {
      let frames = 0;
      const problems: string[] = [];
      for (let i = 0; i < s.frames.length; i++) {
        try {
          const m = await s.loadMask(i);
          if (m) {
            frames++;
            const bad = labelsOutside(m, (v) => v <= s.numObjects || v === 255);
            if (bad.length) problems.push(`${s.name}/${s.frames[i].name}: object ids ${bad.join(',')} exceed frame 0's ${s.numObjects}`);
          }
        } catch (e) {
          if (e instanceof KvlensInputError) problems.push(e.message); else throw e;
        }
      }
      return { keys: ['sequences', ...Array(s.frames.length).fill('frames'), ...Array(frames).fill('annotated frames')], problems };
    }
    case 'coco': return { keys: ['images', ...s.objects.map(() => 'objects')], problems: [] };
    case 'refcoco': return { keys: [`split:${s.split}`, ...s.sentences.map(() => 'sentences')], problems: s.mask.data.includes(1) ? [] : [`ref ${s.refId}: empty mask`] };
    case 'refcoco-parquet': return { keys: [`split:${s.split}`], problems: s.mask.data.includes(1) ? [] : [`${s.questionId}: empty mask`] };
    case 'spair': return { keys: [`category:${s.category}`, ...s.src.kps.map(() => 'keypoint pairs')], problems: [] };
    case 'pope': return { keys: [`answer:${s.answer}`], problems: [] };
    case 'mme': return { keys: [`task:${s.task}`, `answer:${s.answer}`], problems: [] };
    case 'blink': return { keys: [`subtask:${s.subTask}`, `images:${s.images.filter((x) => x).length}`], problems: [] };
  }
}

export async function checkDataset(dataset: DatasetName, root: string, opts: GenericDatasetOptions = {}): Promise<CheckReport> {
  const report: CheckReport = { dataset, root, samples: 0, counts: {}, problems: [], fatal: null };
  try {
    for await (const s of iterateDataset(dataset, root, { ...opts, onProblem: (e) => report.problems.push(e.message) })) {
      report.samples++;
      const { keys, problems } = await inspect(s);
      for (const k of keys) report.counts[k] = (report.counts[k] ?? 0) + 1;
      report.problems.push(...problems);
    }
  } catch (e) {
    if (!(e instanceof KvlensInputError)) {
      report.fatal = `unexpected error: ${(e as Error).message}`;
    } else {
      report.fatal = e.message;
    }
  }
  if (report.samples === 0 && !report.fatal) report.problems.push('no samples found');
  return report;
}

export function formatReport(r: CheckReport): string {
  const lines = [`${r.dataset} at ${r.root}: ${r.samples} sample(s) loaded, ${r.problems.length} problem(s)${r.fatal ? ', stopped early' : ''}`];
  for (const [k, v] of Object.entries(r.counts).sort()) lines.push(`  ${k}: ${v}`);
  if (r.fatal) lines.push(`FATAL: ${r.fatal}`);
  const shown = r.problems.slice(0, 50);
  for (const p of shown) lines.push(`problem: ${p}`);
  if (r.problems.length > shown.length) lines.push(`... and ${r.problems.length - shown.length} more problem(s)`);
  return lines.join('\n');
}
