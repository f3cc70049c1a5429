// The class names of each image a probe task reads, from the dataset's own labels — the text of the prefix
// experiment's per-image conditions ("a photo of a {class}" with the image's class, or another class's name).
//
//   fewshot-seg  Pascal-5i: every VOC class the fold lists name for the image (an image listed twice has two)
//   correspondence  SPair-71k: the pair's category, for both images
//   coseg        MSRC: the group name (cow, car, ...)
//   semseg       ImageNet-S: the folder's wnid, named through a "<wnid> <name>, ..." list (LOC_synset_mapping.txt ...)
//   refseg       RefCOCO: the referred object's COCO category name (instances.json)
// The vocabulary the incorrect condition draws from is the dataset's full class list where the loader knows it
// (VOC, SPair), plus every name seen among the task's images.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { iterateDataset, type AnySample, type RefCocoSample } from '../data/index.js';
import { readCocoInstances } from '../data/loaders/coco.js';
import { VOC_CLASSES } from '../data/loaders/pascal5i.js';
import { SPAIR_CATEGORIES } from '../data/loaders/spair.js';
import { KvlensInputError } from '../util/errors.js';
import type { ProbeTaskConfig } from './config.js';
import { CLASS_NAME_FILES, parseWnidNames } from './samples-text.js';
import { loaderRuns, taskDataset, taskImageId } from './stores.js';

export interface TaskLabels {
  /** Store image id -> the class names of that image (dataset order, no duplicates). */
  readonly byImage: Map<string, string[]>;
  /** Every class name the incorrect condition may use, sorted. */
  readonly vocabulary: string[];
}

/** Known full class lists per dataset (ImageNet-S / MSRC / RefCOCO use the names seen). */
const FULL_VOCABULARY: Partial<Record<string, readonly string[]>> = { pascal5i: VOC_CLASSES, spair: SPAIR_CATEGORIES };

/** Class names of the task's images, keyed by the same ids taskImages gives them. */
export async function taskLabels(t: ProbeTaskConfig, opts: { classNames?: string } = {}): Promise<TaskLabels> {
  const root = resolve(t.data);
  const dataset = taskDataset(t);
  const namer = await classNamer(t, root, opts.classNames);
  const byImage = new Map<string, string[]>();
  const add = (id: string | undefined, name: string) => {
    if (id === undefined) return;
    const list = byImage.get(id) ?? byImage.set(id, []).get(id)!;
    if (!list.includes(name)) list.push(name);
  };
  for (const run of loaderRuns(t)) {
    for await (const s of iterateDataset(dataset, root, run)) {
      const name = namer(s);
      if (name === undefined) continue;
      const x = s as { image?: Parameters<typeof taskImageId>[1]; src?: { image: Parameters<typeof taskImageId>[1] }; trg?: { image: Parameters<typeof taskImageId>[1] } };
      for (const img of [x.image, x.src?.image, x.trg?.image]) if (img) add(taskImageId(root, img), name);
    }
  }
  if (byImage.size === 0) {
    throw new KvlensInputError(`the ${dataset} dataset gave no class names for task ${t.task}; class-name prefixes need per-image labels (use a literal prefix or 'domain')`, root);
  }
  const vocabulary = new Set<string>(FULL_VOCABULARY[dataset] ?? []);
  for (const names of byImage.values()) names.forEach((n) => vocabulary.add(n));
  return { byImage, vocabulary: [...vocabulary].sort() };
}

type Namer = (s: AnySample) => string | undefined;

async function classNamer(t: ProbeTaskConfig, root: string, classNamesFile?: string): Promise<Namer> {
  const dataset = taskDataset(t);
  switch (dataset) {
    case 'pascal5i': return (s) => (s.dataset === 'pascal5i' ? VOC_CLASSES[s.classId] : undefined);
    case 'spair': return (s) => (s.dataset === 'spair' ? s.category : undefined);
    case 'msrc': return (s) => (s.dataset === 'msrc' ? s.group : undefined);
    case 'imagenet-s': {
      const file = classNamesFile ?? [root, join(root, '..')].flatMap((d) => CLASS_NAME_FILES.map((f) => join(d, f))).find((f) => existsSync(f));
      if (!file || !existsSync(file)) {
        throw new KvlensInputError(`ImageNet-S gives wnids only; class-name prefixes need a "<wnid> <name>" list (${CLASS_NAME_FILES.join(' / ')} under the root, or prefixes.classNames)`, root);
      }
      const names = parseWnidNames(await readFile(file, 'utf8'), file);
      return (s) => {
        if (s.dataset !== 'imagenet-s') return undefined;
        const n = names.get(s.wnid);
        if (!n) throw new KvlensInputError(`no name for ${s.wnid}`, file);
        return n;
      };
    }
    case 'refcoco': {
      const file = join(root, t.subset ?? 'refcoco', 'instances.json');
      const { categories } = await readCocoInstances(file);
      return (s) => {
        if (s.dataset !== 'refcoco') return undefined;
        const n = categories.get((s as RefCocoSample).categoryId);
        if (!n) throw new KvlensInputError(`category ${(s as RefCocoSample).categoryId} is not in the categories list`, file);
        return n;
      };
    }
    default:
      throw new KvlensInputError(`dataset "${dataset}" carries no per-image class names; give the prefix as a literal string or 'domain'`, root);
  }
}
