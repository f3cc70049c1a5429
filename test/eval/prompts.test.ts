// Frozen prompts: for one fixture doc per task, the rendered prompt equals lmms-eval's rendering
// (anchors-and-style.md §4.1) character for character, and the prefix/suffix split sits right after the last image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  blinkContext, fullPrompt, LLAVA_LLAMA_3, LLAVA_ONEVISION_QWEN_1_5, llavaHfFormat, lmmsEvalFormat, mmeContext, popeContext, QWEN2_5_VL, splitAtLastImage,
} from '../../src/eval/prompts.js';
import { BUILTIN_CHATML_TEMPLATE } from '../../src/tokenizer/chat-template.js';

const POPE_DOC = { question: 'Is there a snowboard in the image?' };
const MME_DOC = { question: 'Is the word in the logo "angie\'s"? Please answer yes or no.' };
// A stand-in for the dataset's Art_Style prompt (the real one is loaded verbatim from the parquet, never retyped).
const ART_PROMPT = 'Some most common art painting styles include Realism, Impressionism, Expressionism, Pop Art, and Cubism. '
  + 'Given the following images of art paintings, use the first image as the reference image, and determine which one of the '
  + 'second or the third image shares the same style as the reference image?\nSelect from the following choices.\n'
  + '(A) the second image\n(B) the third image';
const BLINK_DOC = { prompt: ART_PROMPT, choices: ['the second image', 'the third image'] };

const SYSTEM = '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n';

test('POPE, llava_onevision qwen_1_5: the lmms-eval rendering', () => {
  const p = LLAVA_ONEVISION_QWEN_1_5.render(popeContext(POPE_DOC.question), 1);
  assert.equal(fullPrompt(p),
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\nIs there a snowboard in the image?\n'
    + 'Answer the question using a single word or phrase.<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(p.prefix, `${SYSTEM}<|im_start|>user\n<image>`);
  assert.equal(p.suffix, '\nIs there a snowboard in the image?\nAnswer the question using a single word or phrase.<|im_end|>\n<|im_start|>assistant\n');
  // doc_to_text strips the question first
  assert.equal(popeContext(`  ${POPE_DOC.question}\n`), popeContext(POPE_DOC.question));
});

test('MME: " Please answer yes or no." is removed because the post prompt is non-empty', () => {
  const p = LLAVA_ONEVISION_QWEN_1_5.render(mmeContext(MME_DOC.question), 1);
  assert.equal(fullPrompt(p),
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\nIs the word in the logo "angie\'s"?\n'
    + 'Answer the question using a single word or phrase.<|im_end|>\n<|im_start|>assistant\n');
  // With an empty post prompt (and no pre prompt) lmms-eval keeps the question as is.
  assert.equal(mmeContext(MME_DOC.question, { post: '' }), MME_DOC.question);
  // qwen_vl's override: post " Answer:"
  assert.equal(mmeContext(MME_DOC.question, { post: ' Answer:' }), 'Is the word in the logo "angie\'s"? Answer:');
});

test('BLINK Art_Style: three space-joined images, letters from the choice count, the row prompt verbatim', () => {
  const p = LLAVA_ONEVISION_QWEN_1_5.render(blinkContext(BLINK_DOC.prompt, BLINK_DOC.choices.length), 3);
  assert.equal(fullPrompt(p),
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image> <image> <image>\n'
    + 'Note: You only need to respond with A, B without providing any additional information.\n'
    + `${ART_PROMPT}<|im_end|>\n<|im_start|>assistant\n`);
  assert.equal(p.prefix, `${SYSTEM}<|im_start|>user\n<image> <image> <image>`);
  assert.ok(p.suffix.startsWith('\nNote: You only need to respond with A, B without'));
  assert.equal(blinkContext('Q', 4).split('\n')[0], 'Note: You only need to respond with A, B, C, D without providing any additional information.');
  // more than five choices: every letter is offered (lmms-eval's later A-Z list; 75571cf stopped at E)
  assert.ok(blinkContext('Q', 7).startsWith('Note: You only need to respond with A, B, C, D, E, F, G without'));
  assert.ok(blinkContext('Q', 26).includes(', Y, Z without'));
  assert.throws(() => blinkContext('Q', 27), /27 choices; letters run out after 26/);
  assert.throws(() => blinkContext('Q', 0), /at least one choice/);
});

test('llava_hf: the checkpoint template decides the system turn (processor template: none; ChatML default: Qwen system)', () => {
  // What the -hf processor's chat template does with one string user message.
  const processorLike = {
    source: 'test:processor-chat-template',
    template: "{%- for m in messages -%}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endfor -%}"
      + "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}",
  };
  const ctx = popeContext(POPE_DOC.question);
  const hf = llavaHfFormat(processorLike).render(ctx, 1);
  assert.equal(fullPrompt(hf), `<|im_start|>user\n<image>\n${ctx}<|im_end|>\n<|im_start|>assistant\n`);
  assert.equal(hf.prefix, '<|im_start|>user\n<image>');
  const chatml = llavaHfFormat({ source: 'builtin:chatml', template: BUILTIN_CHATML_TEMPLATE }).render(ctx, 1);
  assert.equal(fullPrompt(chatml), fullPrompt(LLAVA_ONEVISION_QWEN_1_5.render(ctx, 1)), 'ChatML with its default system turn == the qwen_1_5 rendering');
});

test('Qwen2.5-VL: system turn, vision block directly followed by the text', () => {
  const ctx = popeContext(POPE_DOC.question);
  const p = QWEN2_5_VL.render(ctx, 1);
  assert.equal(fullPrompt(p),
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>'
    + 'Is there a snowboard in the image?\nAnswer the question using a single word or phrase.<|im_end|>\n<|im_start|>assistant\n');
  assert.ok(p.prefix.endsWith('<|vision_end|>'));
  assert.equal(QWEN2_5_VL.render('Q', 2).prefix.split('<|image_pad|>').length - 1, 2);
});

test('placeholders already in the context are used as given; counts are checked', () => {
  const p = LLAVA_ONEVISION_QWEN_1_5.render('Look: <image> what is it?', 1);
  assert.equal(p.prefix, `${SYSTEM}<|im_start|>user\nLook: <image>`);
  assert.throws(() => LLAVA_ONEVISION_QWEN_1_5.render('<image> and <image>', 1), /2 image placeholder\(s\) <image> for 1 image/);
  assert.throws(() => splitAtLastImage('no image here', '<image>', 1, 'x'), /0 image placeholder/);
});

test('Llama-3-LLaVA-NeXT (lmms-eval llava, conv_template llava_llama_3): Llama-3 chat turns with conv_llava_llama_3\'s system message', () => {
  const p = LLAVA_LLAMA_3.render(popeContext('Is there a dog?'), 1);
  assert.equal(fullPrompt(p),
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful language and vision assistant. You are able to understand the visual ' +
    'content that the user provides, and assist the user with a variety of tasks using natural language.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\n<image>\nIs there a dog?\nAnswer the question using a single word or phrase.<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n');
  assert.ok(p.prefix.endsWith('<image>'));
  assert.equal(LLAVA_LLAMA_3.render('Q', 3).prefix.split('<image>').length - 1, 3, 'images space-joined before the context');
});

test('each family gets its lmms-eval format; an unknown family is named', () => {
  assert.equal(lmmsEvalFormat('llava_onevision'), LLAVA_ONEVISION_QWEN_1_5);
  assert.equal(lmmsEvalFormat('llava_next'), LLAVA_LLAMA_3);
  assert.equal(lmmsEvalFormat('qwen2_5_vl'), QWEN2_5_VL);
  assert.equal(fullPrompt(lmmsEvalFormat('qwen2_vl').render('Q', 1)), fullPrompt(QWEN2_5_VL.render('Q', 1)));
  assert.throws(() => lmmsEvalFormat('qwen2'), /no lmms-eval prompt format for model family "qwen2".*llava_onevision, llava_next/);
});
