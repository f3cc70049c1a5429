// Typed samples yielded by every dataset loader (src/data/*.ts). One place, so experiments can switch datasets freely.
// Conventions: label grids are row-major [height * width]; values are the raw label ids of the on-disk format with
// ignore values kept (255 for VOC/BDD, 1000 for ImageNet-S); coordinates are in original-image pixels.
import type { KvlensInputError } from '../util/errors.js';

/** Names accepted by `kvlens data check`, `openDataset` and `generateSynthetic`. */
export const DATASET_NAMES = [
  'pascal5i', 'msrc', 'imagenet-s', 'refcoco', 'refcoco-parquet', 'spair', 'davis', 'coco', 'pope', 'mme', 'blink', 'bdd10k',
] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** An image either on disk (decode with sharp) or as the encoded bytes of a parquet image struct. */
export type ImageSource =
  | { kind: 'path'; path: string }
  | { kind: 'bytes'; bytes: Uint8Array; /** struct `path` field or a synthetic name, for messages */ name: string };

/** A per-pixel label map. data: [height * width], row-major. */
export interface LabelGrid {
  width: number;
  height: number;
  data: Uint8Array | Uint16Array;
}

/** Axis-aligned box [x1, y1, x2, y2] in pixels (SPair) — COCO boxes are kept as [x, y, w, h] and named so. */
export type BoxXYXY = [number, number, number, number];
export type BoxXYWH = [number, number, number, number];
export type Point = [number, number];

/** Called with each per-sample problem when a loader runs in tolerant mode (`kvlens data check`). */
export type ProblemSink = (problem: KvlensInputError) => void;

/** Options every loader accepts. */
export interface LoaderOptions {
  /** If set, a sample that fails to load is reported here and skipped instead of ending the iteration. */
  onProblem?: ProblemSink;
  /** Stop after this many samples (entries that failed count too). */
  limit?: number;
}

// ---- segmentation-style datasets ----

export interface Pascal5iSample {
  dataset: 'pascal5i';
  id: string; // VOC id, e.g. 2007_000033
  /** 0-based VOC class (fold line suffix minus 1); the binary target is mask == classId + 1. */
  classId: number;
  fold: number;
  split: 'trn' | 'val';
  image: ImageSource;
  /** Raw class indices 0..20 with 255 kept (palette indices, never RGB). */
  mask: LabelGrid;
}

export interface CosegSample {
  dataset: 'msrc';
  group: string;
  id: string;
  image: ImageSource;
  /** Binary: 1 = the group's object, 0 = everything else. */
  mask: LabelGrid;
}

export interface ImageNetSSample {
  dataset: 'imagenet-s';
  variant: 50 | 300 | 919;
  split: string; // validation | train-semi
  id: string; // <wnid>/<stem>
  wnid: string;
  /** ImageNet-S class id (1-based) taken from the folder, never from the ImageNet val label. */
  classId: number;
  image: ImageSource;
  /** class = R + 256*G; 0 = other, 1000 = ignore. Uint16. */
  mask: LabelGrid;
}

export interface Bdd10kSample {
  dataset: 'bdd10k';
  split: string;
  id: string; // image stem without _train_id
  image: ImageSource;
  /** train ids 0..18, 255 = unknown. */
  mask: LabelGrid;
  /** BDD frame attributes (weather, scene, timeofday) when the loader selected by them. */
  attributes?: Partial<Record<'weather' | 'scene' | 'timeofday', string>>;
}

// ---- COCO family ----

export type CocoSegmentation = number[][] | { counts: number[] | string; size: [number, number] };

export interface CocoObject {
  annId: number;
  categoryId: number;
  categoryName: string;
  bbox: BoxXYWH;
  area: number;
  iscrowd: 0 | 1;
  segmentation: CocoSegmentation;
  /** Binary mask (0/1) decoded from polygons (union, pycocotools rasteriser) or RLE. */
  mask: LabelGrid;
}

export interface CocoSample {
  dataset: 'coco';
  imageId: number;
  fileName: string;
  width: number;
  height: number;
  image: ImageSource;
  objects: CocoObject[];
}

export interface RefSentence { sentId: number; sent: string; raw: string; tokens: string[] }

export interface RefCocoSample {
  dataset: 'refcoco';
  refId: number;
  annId: number;
  imageId: number;
  categoryId: number;
  split: string;
  image: ImageSource;
  width: number;
  height: number;
  sentences: RefSentence[];
  bbox: BoxXYWH;
  /** getMask(): per-polygon masks summed then > 0, i.e. 0/1. */
  mask: LabelGrid;
}

export interface RefCocoParquetSample {
  dataset: 'refcoco-parquet';
  questionId: string;
  split: string;
  image: ImageSource;
  width: number;
  height: number;
  question: string;
  answers: string[];
  bbox: BoxXYWH;
  iscrowd: number;
  fileName: string;
  /** From the single flat polygon of the parquet copy (lossy for multi-part objects). */
  mask: LabelGrid;
}

// ---- correspondence / video ----

export interface SpairSide {
  imname: string;
  image: ImageSource;
  /** From `*_imsize` = [width, height, depth]. */
  width: number;
  height: number;
  bndbox: BoxXYXY;
  pose: string;
  kps: Point[];
  /** Segmentation/<category>/<stem>.png (value = VOC class index of the category); may be absent. */
  segmentationPath: string;
}

export interface SpairSample {
  dataset: 'spair';
  pairName: string; // e.g. 000001-2008_000585-2008_004704:aeroplane
  pairId: number;
  split: 'trn' | 'val' | 'test';
  category: string;
  src: SpairSide;
  trg: SpairSide;
  kpsIds: number[];
  viewpointVariation: number;
  scaleVariation: number;
  truncation: number;
  occlusion: number;
  mirror: number;
}

export interface DavisFrame { name: string; image: ImageSource; annotationPath: string | null }

export interface DavisSequence {
  dataset: 'davis';
  name: string;
  split: string;
  frames: DavisFrame[];
  /** Max object id in frame 0's annotation. */
  numObjects: number;
  /** Frame 0's annotation (palette indices = object ids). */
  firstMask: LabelGrid;
  /** Reads frame i's annotation (indices), or null when the split ships none for that frame. */
  loadMask(frame: number): Promise<LabelGrid | null>;
}

// ---- question answering ----

export type PopeSplit = 'random' | 'popular' | 'adversarial';

export interface PopeSample {
  dataset: 'pope';
  split: PopeSplit;
  questionId: number;
  imageFile: string; // COCO_val2014_*.jpg as written in the file
  image: ImageSource;
  question: string;
  answer: 'yes' | 'no';
}

export interface MmeSample {
  dataset: 'mme';
  task: string;
  /** Shared by the image's two questions (acc+ pairs them): `<task>/<stem>.<ext>`. */
  questionId: string;
  image: ImageSource;
  question: string;
  answer: 'Yes' | 'No';
}

export interface BlinkSample {
  dataset: 'blink';
  idx: string;
  subTask: string;
  split: string;
  question: string;
  /** image_1..image_4; null where the row has no image. */
  images: [ImageSource | null, ImageSource | null, ImageSource | null, ImageSource | null];
  choices: string[];
  /** With parentheses, e.g. "(A)"; empty string when withheld (test split). */
  answer: string;
  prompt: string;
  explanation: string;
}

export type AnySample =
  | Pascal5iSample | CosegSample | ImageNetSSample | Bdd10kSample | CocoSample | RefCocoSample | RefCocoParquetSample
  | SpairSample | DavisSequence | PopeSample | MmeSample | BlinkSample;
