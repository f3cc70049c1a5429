// Synthetic MME (existence in the FLAT layout, scene in the SPLIT layout) and BLINK (Art_Style-like: which candidate
// shares the reference's texture "style"; Counting: one image, images 2-4 null) with known answers.
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { writeFileAtomic } from '../io.js';
import { Canvas, colourFor, encodePngRgb, randomShape, SHAPE_KINDS, shapeMask, type ShapeKind } from './draw.js';
import { imageStructSchema, listSchema } from './coco.js';
import { mulberry32, type Rng } from './prng.js';
import type { SynthOptions } from './segmentation.js';

async function shapesImage(rng: Rng, kinds: readonly ShapeKind[], w = 112, h = 96): Promise<Canvas> {
  const canvas = new Canvas(w, h, rng, [rng.int(150, 220), rng.int(150, 220), rng.int(150, 220)]);
  for (const k of kinds) canvas.paint(shapeMask(randomShape(rng, w, h, k), w, h), colourFor(SHAPE_KINDS.indexOf(k) + 1), 1);
  return canvas;
}

/** MME: <root>/existence/<stem>.{jpg,png}+<stem>.txt (flat) and <root>/scene/{images,questions_answers_YN}/ (split). */
export async function synthMme(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const truth: { task: string; stem: string; present: ShapeKind; absent: ShapeKind }[] = [];
  for (let i = 0; i < (o.n ?? 4); i++) {
    const task = i % 2 === 0 ? 'existence' : 'scene';
    const [present, absent] = rng.shuffle([...SHAPE_KINDS]).slice(0, 2);
    const canvas = await shapesImage(rng, [present]);
    const stem = String(i + 1).padStart(4, '0');
    const usePng = i % 4 === 2; // extensions are mixed in the real release
    const img = usePng ? await encodePngRgb(canvas.rgb, canvas.width, canvas.height) : await canvas.jpeg();
    const eol = i % 3 === 0 ? '\r\n' : '\n'; // some real files are CRLF
    const text = [
      `Is there a ${present} in this image? Please answer yes or no.\tYes`,
      `Is there a ${absent} in this image? Please answer yes or no.\tNo`,
    ].join(eol) + eol;
    if (task === 'existence') {
      await writeFileAtomic(join(root, task, `${stem}.${usePng ? 'png' : 'jpg'}`), img);
      await writeFileAtomic(join(root, task, `${stem}.txt`), text);
    } else {
      await writeFileAtomic(join(root, task, 'images', `${stem}.${usePng ? 'png' : 'jpg'}`), img);
      await writeFileAtomic(join(root, task, 'questions_answers_YN', `${stem}.txt`), text);
    }
    truth.push({ task, stem, present, absent });
  }
  return { truth };
}

/** A shape filled with a texture: 'stripes' or 'dots' (the synthetic "art style"). */
async function styledImage(rng: Rng, style: 'stripes' | 'dots'): Promise<Uint8Array> {
  const w = 96, h = 96;
  const canvas = new Canvas(w, h, rng, [230, 225, 210]);
  const mask = shapeMask(randomShape(rng, w, h), w, h);
  const base = colourFor(rng.int(1, 12));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const on = style === 'stripes' ? Math.floor((x + y) / 4) % 2 === 0 : (x % 6 < 3 && y % 6 < 3);
      if (mask.data[i] || on) canvas.rgb.set(on ? [20, 20, 20] : base, 3 * i);
    }
  }
  return canvas.jpeg();
}

const ART_PROMPT = 'Some most common art painting styles include Realism, Impressionism, Expressionism, Pop Art, and Cubism. '
  + 'Given the following images of art paintings, use the first image as the reference image, and determine which one of the '
  + 'second or the third image shares the same style as the reference image?\nSelect from the following choices.\n'
  + '(A) the second image\n(B) the third image\n';

/** BLINK: Art_Style/val-00000-of-00001.parquet (3 images) and Counting/val-00000-of-00001.parquet (1 image). */
export async function synthBlink(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const n = o.n ?? 4;
  const art: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const style = rng.next() < 0.5 ? 'stripes' : 'dots';
    const other = style === 'stripes' ? 'dots' : 'stripes';
    const answerIsSecond = rng.next() < 0.5;
    const imgs = [await styledImage(rng, style), await styledImage(rng, answerIsSecond ? style : other), await styledImage(rng, answerIsSecond ? other : style)];
    art.push({
      idx: `val_Art_Style_${i + 1}`, question: 'Which image shares the same style as the reference image?', sub_task: 'Art Style',
      images: [...imgs, null], choices: ['the second image', 'the third image'], answer: answerIsSecond ? '(A)' : '(B)', prompt: ART_PROMPT,
      explanation: '',
    });
  }
  const counting: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const count = rng.int(1, 3);
    const canvas = await shapesImage(rng, rng.shuffle([...SHAPE_KINDS]).slice(0, count));
    const choices = ['1', '2', '3', '4'];
    counting.push({
      idx: `val_Counting_${i + 1}`, question: 'How many shapes are in the image?', sub_task: 'Counting',
      images: [await canvas.jpeg(), null, null, null], choices, answer: `(${String.fromCharCode(64 + count)})`,
      prompt: `How many shapes are in the image?\nSelect from the following choices.\n${choices.map((c, k) => `(${String.fromCharCode(65 + k)}) ${c}`).join('\n')}`,
      explanation: '',
    });
  }
  await writeFileAtomic(join(root, 'Art_Style', 'val-00000-of-00001.parquet'), blinkParquet(art));
  await writeFileAtomic(join(root, 'Counting', 'val-00000-of-00001.parquet'), blinkParquet(counting));
  return { truth: { art: art.map((r) => ({ idx: r.idx as string, answer: r.answer as string })), counting: counting.map((r) => ({ idx: r.idx as string, answer: r.answer as string })) } };
}

function blinkParquet(rows: Record<string, unknown>[]): Uint8Array {
  const str = (k: string) => ({ name: k, data: rows.map((r) => r[k] as string) });
  const image = (k: number) => ({
    name: `image_${k + 1}`,
    data: rows.map((r) => { const b = (r.images as (Uint8Array | null)[])[k]; return b ? { bytes: b, path: null } : null; }),
  });
  const utf8 = (name: string) => ({ name, type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'OPTIONAL' as const });
  const buf = parquetWriteBuffer({
    columnData: [str('idx'), str('question'), str('sub_task'), image(0), image(1), image(2), image(3),
      { name: 'choices', data: rows.map((r) => r.choices as string[]) }, str('answer'), str('prompt'), str('explanation')],
    schema: [
      { name: 'schema', num_children: 11 }, utf8('idx'), utf8('question'), utf8('sub_task'),
      ...imageStructSchema('image_1'), ...imageStructSchema('image_2'), ...imageStructSchema('image_3'), ...imageStructSchema('image_4'),
      ...listSchema('choices', { type: 'BYTE_ARRAY', converted_type: 'UTF8' }), utf8('answer'), utf8('prompt'), utf8('explanation'),
    ],
    rowGroupSize: 2,
  });
  return new Uint8Array(buf);
}
