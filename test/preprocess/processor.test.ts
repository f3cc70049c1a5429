import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HF_REF } from '../helpers/fixtures.js';
import { readAllTensors } from '../../src/tensor/safetensors.js';
import { LlavaOnevisionProcessor } from '../../src/preprocess/processor.js';
import { KvlensInputError } from '../../src/util/errors.js';

const MODEL = join(HF_REF, 'models', 'llava_onevision_tiny');
const notes = JSON.parse(readFileSync(join(HF_REF, 'manifest.json'), 'utf8')).notes;
const input = (f: string) => join(HF_REF, 'inputs', f);
const A = input('image_a_150x200.png');
const B = input('image_b_60x200.png');
const C = input('image_c_50x70.png');

function refRun(run: string) {
  return readAllTensors(join(HF_REF, 'runs', `${run}.safetensors`));
}
const ids = (t: { data: unknown }) => [...(t.data as BigInt64Array)].map(Number);

test('llava_single: template rendering, input_ids, image_sizes and pixel_values equal HF exactly', async () => {
  const proc = await LlavaOnevisionProcessor.fromPretrained(MODEL);
  assert.equal(proc.template.source, 'builtin:chatml'); // the fixture checkpoint ships no template
  const out = await proc.prepare({ images: [A], question: 'What is the object in the image?', systemPrompt: null });
  assert.equal(out.prompt, notes.prompts.llava_single);
  const ref = refRun('llava_single');
  assert.deepEqual(ids(out.inputIds), ids(ref.get('input_ids')!));
  assert.deepEqual(out.inputIds.shape, [1, 185]);
  assert.deepEqual([...out.imageSizes!.data], [...(ref.get('image_sizes')!.data as BigInt64Array)]);
  assert.deepEqual(out.pixelValues!.data, ref.get('pixel_values')!.data);
});

test('llava_multi: three images (text between), zero-padded tiles, ids exact', async () => {
  const proc = await LlavaOnevisionProcessor.fromPretrained(MODEL);
  const out = await proc.prepare({
    images: [A, B, C], systemPrompt: null,
    messages: [{ role: 'user', content: [
      { type: 'image' }, { type: 'image' }, { type: 'text', text: 'And this one: ' }, { type: 'image' },
      { type: 'text', text: 'Is the object in the images the same?' },
    ] }],
  });
  assert.equal(out.prompt, notes.prompts.llava_multi);
  const ref = refRun('llava_multi');
  assert.deepEqual(ids(out.inputIds), ids(ref.get('input_ids')!));
  assert.deepEqual([...out.imageSizes!.data], [...(ref.get('image_sizes')!.data as BigInt64Array)]);
  assert.deepEqual(out.pixelValues!.shape, [3, 13, 3, 56, 56]);
  assert.deepEqual(out.pixelValues!.data, ref.get('pixel_values')!.data);
  assert.deepEqual(out.tilesPerImage, [13, 9, 3]);
  assert.deepEqual(out.tokenMap.runs.map((r) => r.end - r.start), [156, 84, 44]);
});

test('llava_prefix: system prompt and text before the image; ids exact, image run at 53..208', async () => {
  const proc = await LlavaOnevisionProcessor.fromPretrained(MODEL);
  const out = await proc.prepare({
    images: [A], systemPrompt: 'Answer in one short sentence.', prefix: 'Here is a photo of an object:\n', question: 'What colour is the disc?',
  });
  assert.equal(out.prompt, notes.prompts.llava_prefix);
  const ref = refRun('llava_prefix');
  assert.deepEqual(ids(out.inputIds), ids(ref.get('input_ids')!));
  assert.deepEqual([...out.imageSizes!.data], [...(ref.get('image_sizes')!.data as BigInt64Array)]);
  assert.deepEqual(out.tokenMap.runs, [{ image: 0, start: 53, end: 209 }]);
});

test('a ready prompt string is used verbatim; placeholder/image count mismatch is a KvlensInputError', async () => {
  const proc = await LlavaOnevisionProcessor.fromPretrained(MODEL);
  const out = await proc.prepare({ images: [A], text: notes.prompts.llava_mask4d });
  assert.deepEqual(ids(out.inputIds), ids(refRun('llava_single').get('input_ids')!));
  await assert.rejects(proc.prepare({ images: [A, B], text: notes.prompts.llava_single }),
    (e: unknown) => e instanceof KvlensInputError && /1 image placeholder\(s\) <image> but 2 image\(s\)/.test(e.message));
  await assert.rejects(proc.prepare({ images: [], text: notes.prompts.llava_single }), KvlensInputError);
  await assert.rejects(proc.prepare({ images: [A], text: 'no placeholder here' }), KvlensInputError);
});

test('built-in ChatML: default system prompt when not turned off', async () => {
  const proc = await LlavaOnevisionProcessor.fromPretrained(MODEL);
  const out = await proc.prepare({ images: [C], question: 'Q?' });
  assert.equal(out.prompt, '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\nQ?<|im_end|>\n<|im_start|>assistant\n');
  const n = out.tokenMap.entries.filter((e) => e !== null).length;
  assert.equal(n, 44);
});
