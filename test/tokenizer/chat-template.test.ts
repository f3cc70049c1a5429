import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HF_REF } from '../helpers/fixtures.js';
import { BUILTIN_CHATML_TEMPLATE, buildConversation, findChatTemplate, renderChatTemplate } from '../../src/tokenizer/chat-template.js';
import { expandImagePlaceholders } from '../../src/tokenizer/prompt.js';
import { KvlensInputError } from '../../src/util/errors.js';

test('built-in ChatML: system on/off, prefix before the image, several images', () => {
  const noSys = renderChatTemplate(BUILTIN_CHATML_TEMPLATE, buildConversation({ nImages: 1, question: 'Q?' }), { variables: { add_system_prompt: false } });
  assert.equal(noSys, '<|im_start|>user\n<image>\nQ?<|im_end|>\n<|im_start|>assistant\n');
  const sys = renderChatTemplate(BUILTIN_CHATML_TEMPLATE, buildConversation({ nImages: 2, question: 'Q?', prefix: 'Look:\n', systemPrompt: 'Be brief.' }));
  assert.equal(sys, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nLook:\n<image>\n<image>\nQ?<|im_end|>\n<|im_start|>assistant\n');
  const dflt = renderChatTemplate(BUILTIN_CHATML_TEMPLATE, buildConversation({ nImages: 0, question: 'hi' }), { addGenerationPrompt: false });
  assert.equal(dflt, '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n');
});

test('template discovery: chat_template.json, then processor_config.json, then tokenizer_config.json, else built-in', async () => {
  assert.equal((await findChatTemplate(join(HF_REF, 'models', 'llava_onevision_tiny'))).source, 'builtin:chatml');
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-tpl-'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D{{ messages[0].content }}' }] }));
  const t1 = await findChatTemplate(dir);
  assert.equal(renderChatTemplate(t1.template, [{ role: 'user', content: 'x' }]), 'Dx');
  writeFileSync(join(dir, 'chat_template.json'), JSON.stringify({ chat_template: 'P{{ bos_token }}' }));
  const t2 = await findChatTemplate(dir);
  assert.ok(t2.source.endsWith('chat_template.json'));
  assert.equal(renderChatTemplate(t2.template, [], { variables: { bos_token: '<s>' } }), 'P<s>');
  assert.throws(() => renderChatTemplate('{% if %}', []), KvlensInputError);
});

test('placeholder expansion: runs per image, count mismatch names both numbers', () => {
  const { ids, runs } = expandImagePlaceholders([1, 9, 2, 9, 3], 9, [2, 3]);
  assert.deepEqual(ids, [1, 9, 9, 2, 9, 9, 9, 3]);
  assert.deepEqual(runs, [{ image: 0, start: 1, end: 3 }, { image: 1, start: 4, end: 7 }]);
  assert.throws(() => expandImagePlaceholders([1, 9, 2], 9, [2, 3]), /1 image placeholder\(s\) <image> but 2 image\(s\)/);
});
