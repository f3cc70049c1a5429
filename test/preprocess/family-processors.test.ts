// LLaVA-NeXT and Qwen2-VL / Qwen2.5-VL processors: ids from prompt parts (question / prefix / system prompt) equal the
// reference fixtures' input_ids exactly; token maps hand-checked; loadProcessor dispatches on model_type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAllTensors } from '../../src/tensor/safetensors.js';
import { loadProcessor, LlavaNextProcessor, Qwen2VLProcessor } from '../../src/preprocess/index.js';
import { bytesToUnicode } from '../../src/models/synthetic/tokenizer-files.js';
import { HF_REF, HF_REF_MORE } from '../helpers/fixtures.js';

const ids = (root: string, run: string) => Array.from(readAllTensors(join(root, 'runs', `${run}.safetensors`)).get('input_ids')!.data as BigInt64Array, Number);
const NEXT = join(HF_REF_MORE, 'models', 'llava_next_tiny');

test('LLaVA-NeXT: question / prefix / system prompt through the built-in Llama-3 template give the fixture ids', async () => {
  const proc = await loadProcessor(NEXT);
  assert.ok(proc instanceof LlavaNextProcessor);
  assert.equal(proc.template.source, 'builtin:llama3');
  const a = await proc.prepare({ images: [join(HF_REF_MORE, 'inputs/image_a_118x180.png')], question: 'What is the object in the image?' });
  assert.deepEqual(Array.from(a.inputIds.data, Number), ids(HF_REF_MORE, 'llava_next_single'));
  const b = await proc.prepare({
    images: [join(HF_REF_MORE, 'inputs/image_b_90x208.png')], systemPrompt: 'You are a helpful assistant.',
    prefix: 'What is the object in the image? Look: ', question: 'Is it on the left?',
  });
  assert.deepEqual(Array.from(b.inputIds.data, Number), ids(HF_REF_MORE, 'llava_next_prefix'));
  // token map of image B (notes: 9 base + 3 rows x (7 + newline) = 33 tokens at positions 56..88)
  const run = b.tokenMap.runs[0];
  assert.deepEqual([run.start, run.end], [56, 89]);
  const views = b.tokenMap.entries.slice(56, 89).map((e) => e!.view);
  assert.equal(views.filter((v) => v === 'base').length, 9);
  assert.equal(views.filter((v) => v === 'highres').length, 21);
  assert.equal(views.filter((v) => v === 'newline').length, 3);
  // first high-res cell: columns unpadded by 1 patch (14 of 126 canvas px = 1 patch; image resized to 42x98, padded 14 left)
  const first = b.tokenMap.entries[56 + 9]!;
  assert.equal(first.row, 0);
  assert.equal(first.col, 0);
  assert.ok(Math.abs(first.box!.x0 - 0) < 1e-9 && Math.abs(first.box!.x1 - 14 * 208 / 98) < 1e-9, JSON.stringify(first.box));
});

/** A checkpoint directory whose tokenizer is the fixtures' byte-level one (ids 0..255 = bytes, specials at 300..306). */
function qwenDir(model: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-qwen-proc-'));
  for (const f of ['config.json', 'preprocessor_config.json']) copyFileSync(join(model, f), join(dir, f));
  const vocab = Object.fromEntries(bytesToUnicode().map((ch, b) => [ch, b]));
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\n');
  const specials = { '<|endoftext|>': 300, '<|im_start|>': 301, '<|im_end|>': 302, '<|image_pad|>': 303, '<|video_pad|>': 304, '<|vision_start|>': 305, '<|vision_end|>': 306 };
  const decoder = Object.fromEntries(Object.entries(specials).map(([t, id]) => [String(id), { content: t, special: true, normalized: false, lstrip: false, rstrip: false, single_word: false }]));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ added_tokens_decoder: decoder, tokenizer_class: 'Qwen2Tokenizer', eos_token: '<|im_end|>' }));
  return dir;
}

test('Qwen2.5-VL: built-in Qwen2-VL ChatML, one <|image_pad|> per merged token, fixture ids exactly', async () => {
  const proc = await loadProcessor(qwenDir(join(HF_REF_MORE, 'models', 'qwen2_5_vl_tiny')));
  assert.ok(proc instanceof Qwen2VLProcessor);
  assert.equal(proc.family, 'qwen2_5_vl');
  // default system turn ("You are a helpful assistant."), image first
  const c = await proc.prepare({ images: [join(HF_REF_MORE, 'inputs/image_c_150x200.png')], question: 'What is the object in the image?' });
  assert.deepEqual(Array.from(c.inputIds.data, Number), ids(HF_REF_MORE, 'qwen2_5_vl_single'));
  assert.deepEqual(Array.from(c.imageGridThw!.data, Number), [1, 10, 14]);
  // 150x200 -> 140x196: 5 x 7 merged tokens of 28 px; cell (1, 2) covers resized [56, 84) x [28, 56)
  const run = c.tokenMap.runs[0];
  assert.equal(run.end - run.start, 35);
  const cell = c.tokenMap.entries[run.start + 7 + 2]!;
  assert.deepEqual([cell.view, cell.row, cell.col], ['highres', 1, 2]);
  const near = (a: number, b: number) => Math.abs(a - b) < 1e-9;
  assert.ok(near(cell.box!.x0, 56 * 200 / 196) && near(cell.box!.x1, 84 * 200 / 196) && near(cell.box!.y0, 28 * 150 / 140) && near(cell.box!.y1, 56 * 150 / 140));
});

test('Qwen2-VL: no system turn, and interleaved text/images as messages, give the fixture ids', async () => {
  const proc = await loadProcessor(qwenDir(join(HF_REF, 'models', 'qwen2vl_tiny')));
  const single = await proc.prepare({ images: [join(HF_REF, 'inputs/image_a_150x200.png')], question: 'What is this?', systemPrompt: null });
  assert.deepEqual(Array.from(single.inputIds.data, Number), ids(HF_REF, 'qwen2vl_single'));
  const multi = await proc.prepare({
    images: [join(HF_REF, 'inputs/image_b_60x200.png'), join(HF_REF, 'inputs/image_c_50x70.png')],
    messages: [
      { role: 'system', content: 'Answer briefly.' },
      { role: 'user', content: [{ type: 'text', text: 'Left: ' }, { type: 'image' }, { type: 'text', text: '\nRight: ' }, { type: 'image' }, { type: 'text', text: '\nWhich one is wider?' }] },
    ],
  });
  assert.deepEqual(Array.from(multi.inputIds.data, Number), ids(HF_REF, 'qwen2vl_multi'));
  assert.deepEqual(multi.tokenMap.runs.map((r) => r.end - r.start), [14, 4]);
});
