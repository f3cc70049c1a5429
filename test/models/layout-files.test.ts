// Tokenizer and processor files as transformers versions write them: which chat template and which image-processor
// settings are used when several files hold one, Qwen's pixel bounds in either spelling, fast processor type names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findChatTemplate } from '../../src/tokenizer/chat-template.js';
import { readProcessorFiles } from '../../src/preprocess/processor-files.js';
import { parseQwen2VLImageConfig } from '../../src/preprocess/qwen2vl-image.js';
import { parseAnyresImageConfig } from '../../src/preprocess/llava-onevision-image.js';
import { KvlensInputError } from '../../src/util/errors.js';

const json = (dir: string, name: string, v: unknown) => writeFileSync(join(dir, name), JSON.stringify(v));

test('chat template precedence: chat_template.json > chat_template.jinja > processor_config.json > tokenizer_config.json, the others named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-tpl-'));
  json(dir, 'tokenizer_config.json', { chat_template: 'T' });
  assert.deepEqual(await findChatTemplate(dir), { source: join(dir, 'tokenizer_config.json'), template: 'T' });
  json(dir, 'processor_config.json', { chat_template: 'P' });
  assert.equal((await findChatTemplate(dir)).template, 'P');
  writeFileSync(join(dir, 'chat_template.jinja'), 'J');
  const j = await findChatTemplate(dir);
  assert.equal(j.source, join(dir, 'chat_template.jinja'));
  assert.deepEqual(j.notes, [
    `${join(dir, 'processor_config.json')} holds a different chat template; ${join(dir, 'chat_template.jinja')} was used, as transformers does`,
    `${join(dir, 'tokenizer_config.json')} holds a different chat template; ${join(dir, 'chat_template.jinja')} was used, as transformers does`,
  ]);
  json(dir, 'chat_template.json', { chat_template: 'J' });
  const legacy = await findChatTemplate(dir);
  assert.equal(legacy.source, join(dir, 'chat_template.json'), 'the legacy processor file wins, as in transformers');
  assert.equal(legacy.notes?.length, 2, 'the .jinja holds the same template: not noted');
});

test('image-processor settings: processor_config.json "image_processor" (v5) over preprocessor_config.json, processor kwargs apart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-proc-'));
  await assert.rejects(readProcessorFiles(dir), (e: unknown) => e instanceof KvlensInputError && /no image-processor settings/.test((e as Error).message));
  json(dir, 'preprocessor_config.json', { image_processor_type: 'Qwen2VLImageProcessor', min_pixels: 3136 });
  json(dir, 'processor_config.json', { processor_class: 'Qwen2VLProcessor', image_token: '<|image_pad|>' });
  const legacy = await readProcessorFiles(dir);
  assert.equal(legacy.imageSource, join(dir, 'preprocessor_config.json'));
  assert.deepEqual(legacy.processor, { processor_class: 'Qwen2VLProcessor', image_token: '<|image_pad|>' });
  json(dir, 'processor_config.json', { processor_class: 'Qwen2VLProcessor', image_processor: { image_processor_type: 'Qwen2VLImageProcessorFast', size: { shortest_edge: 6272, longest_edge: 50176 } }, video_processor: {} });
  const v5 = await readProcessorFiles(dir);
  assert.equal(v5.imageSource, `${join(dir, 'processor_config.json')} (image_processor)`);
  assert.equal(v5.imageFile, join(dir, 'processor_config.json'));
  assert.deepEqual(v5.processor, { processor_class: 'Qwen2VLProcessor' });
  assert.match(v5.notes[0], /preprocessor_config.json differs from processor_config.json's "image_processor" and was not used/);
  const c = parseQwen2VLImageConfig(v5.image, v5.imageSource);
  assert.deepEqual([c.processorType, c.minPixels, c.maxPixels], ['Qwen2VLImageProcessor', 6272, 50176]);
  assert.match(c.notes[0], /Qwen2VLImageProcessorFast.*PIL arithmetic/);
  json(dir, 'processor_config.json', { image_processor: 'not an object' });
  await assert.rejects(readProcessorFiles(dir), /field "image_processor": expected an object/);
});

test('Qwen pixel bounds: min_pixels / max_pixels override size.{shortest,longest}_edge, which override size.{min,max}_pixels', () => {
  const both = parseQwen2VLImageConfig({ min_pixels: 3136, max_pixels: 12845056, size: { shortest_edge: 3136, longest_edge: 12845056 } });
  assert.deepEqual([both.minPixels, both.maxPixels, both.notes], [3136, 12845056, []]);
  const differ = parseQwen2VLImageConfig({ max_pixels: 100352, size: { shortest_edge: 6272, longest_edge: 12845056 } }, 'pre.json');
  assert.deepEqual([differ.minPixels, differ.maxPixels], [6272, 100352]);
  assert.deepEqual(differ.notes, ['pre.json: "max_pixels" 100352 used; "size.longest_edge" 12845056 differs and is overridden, as in transformers']);
  const old = parseQwen2VLImageConfig({ size: { min_pixels: 6272, max_pixels: 100352 } });
  assert.deepEqual([old.minPixels, old.maxPixels], [6272, 100352]);
  const dflt = parseQwen2VLImageConfig({});
  assert.deepEqual([dflt.minPixels, dflt.maxPixels], [56 * 56, 28 * 28 * 1280]);
  assert.throws(() => parseQwen2VLImageConfig({ min_pixels: 9000, max_pixels: 3000 }), /minimum pixel count 9000 exceeds the maximum 3000/);
  assert.throws(() => parseQwen2VLImageConfig({ image_processor_type: 'SiglipImageProcessor' }), /expected Qwen2VLImageProcessor or Qwen2VLImageProcessorFast/);
});

test('fast LLaVA image-processor type names are read as their slow class, with a note', () => {
  const c = parseAnyresImageConfig({ image_processor_type: 'LlavaNextImageProcessorFast', size: { shortest_edge: 336 } }, 'p.json');
  assert.equal(c.processorType, 'LlavaNextImageProcessor');
  assert.equal(c.tileSize, 336);
  assert.match(c.notes[0], /^p.json: image_processor_type "LlavaNextImageProcessorFast"/);
  assert.throws(() => parseAnyresImageConfig({ image_processor_type: 'CLIPImageProcessor' }, 'p.json'), /expected LlavaOnevisionImageProcessor or LlavaOnevisionImageProcessorFast or LlavaNextImageProcessor/);
});
