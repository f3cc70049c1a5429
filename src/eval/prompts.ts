// Prompts exactly as lmms-eval renders them (tasks pope / mme / blink at 75571cf; anchors-and-style.md §4), in two
// layers, mirroring lmms-eval's own split:
//  1. task context (doc_to_text): the question plus the task's pre/post prompt;
//  2. conversation format (the model wrapper): where the image placeholders go and the chat rendering.
// A rendered prompt is returned as `prefix` (everything up to and including the LAST image placeholder) and `suffix`
// (the rest): the prefix is what the runner prefills once per image and shares between questions and conditions.

import { renderChatTemplate, type FoundTemplate } from '../tokenizer/chat-template.js';
import { KvlensInputError } from '../util/errors.js';

// ---- 1. task contexts (doc_to_text) ----

/** lmms-eval's default post prompt of POPE and MME. */
export const SHORT_ANSWER_POST_PROMPT = '\nAnswer the question using a single word or phrase.';
/** MME questions end with this; lmms-eval removes it (every occurrence) whenever a non-empty pre or post prompt is set. */
export const MME_REPLACED_SUFFIX = ' Please answer yes or no.';
/** BLINK's default pre prompt; `{}` is filled (Python str.format) with the choice letters joined by ", ". */
export const BLINK_PRE_PROMPT = 'Note: You only need to respond with {} without providing any additional information.\n';
/**
 * BLINK's choice letters, the first n for a row of n choices. lmms-eval at 75571cf slices a list of five (A-E), so a
 * row with more choices was never told the later letters; its later utils slice A-Z. Every real BLINK row has at most
 * four choices (identical prompts); beyond five we follow the later rule so every answer letter is offered.
 */
const BLINK_OPTION_LABELS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('');

/** Python's str.strip() without arguments: Unicode whitespace on both ends (JS trim() agrees for text prompts). */
const pyStrip = (s: string) => s.trim();

export interface PrePost {
  readonly pre?: string;
  readonly post?: string;
}

/** POPE: `question.strip() + post` (lmms-eval ignores any pre prompt for POPE). */
export function popeContext(question: string, o: Pick<PrePost, 'post'> = {}): string {
  return `${pyStrip(question)}${o.post ?? SHORT_ANSWER_POST_PROMPT}`;
}

/** MME: strip; with a non-empty pre/post prompt the trailing " Please answer yes or no." is removed first. */
export function mmeContext(question: string, o: PrePost = {}): string {
  const pre = o.pre ?? '';
  const post = o.post ?? SHORT_ANSWER_POST_PROMPT;
  let q = pyStrip(question);
  if (pre !== '') q = `${pre}${q.split(MME_REPLACED_SUFFIX).join('')}`;
  if (post !== '') q = `${q.split(MME_REPLACED_SUFFIX).join('')}${post}`;
  return q;
}

/** BLINK: pre prompt with the choice letters, then the row's `prompt` verbatim (post prompt "" by default). */
export function blinkContext(prompt: string, nChoices: number, o: PrePost = {}): string {
  if (!Number.isInteger(nChoices) || nChoices < 1) throw new KvlensInputError(`a BLINK row needs at least one choice, got ${nChoices}`);
  if (nChoices > BLINK_OPTION_LABELS.length) throw new KvlensInputError(`a BLINK row has ${nChoices} choices; letters run out after ${BLINK_OPTION_LABELS.length}`);
  const letters = BLINK_OPTION_LABELS.slice(0, nChoices).join(', ');
  // Python's format replaces the one positional field; the default pre prompt has exactly one "{}".
  const pre = (o.pre ?? BLINK_PRE_PROMPT).replace('{}', letters);
  return `${pre}${prompt}${o.post ?? ''}`;
}

// ---- 2. conversation formats ----

export interface RenderedPrompt {
  /** Up to and including the last image placeholder: identical for every question on the same image(s). */
  readonly prefix: string;
  /** Everything after it (the question and the generation prompt). */
  readonly suffix: string;
  /** The format that produced it (recorded next to every number). */
  readonly format: string;
}

export interface PromptFormat {
  readonly name: string;
  /** The image placeholder string that must appear once per image in the rendered prompt. */
  readonly imagePlaceholder: string;
  render(context: string, nImages: number): RenderedPrompt;
}

/** Split a full prompt after its last image placeholder; checks that there is one per image. */
export function splitAtLastImage(full: string, placeholder: string, nImages: number, format: string): RenderedPrompt {
  const count = full.split(placeholder).length - 1;
  if (count !== nImages) {
    throw new KvlensInputError(`the ${format} prompt holds ${count} image placeholder(s) ${placeholder} for ${nImages} image(s)`);
  }
  if (nImages === 0) return { prefix: '', suffix: full, format };
  const cut = full.lastIndexOf(placeholder) + placeholder.length;
  return { prefix: full.slice(0, cut), suffix: full.slice(cut), format };
}

/** lmms-eval's llava wrappers: images go first, space-joined, then "\n" — unless the context already holds them. */
function withImagePlaceholders(context: string, nImages: number, placeholder: string): string {
  if (nImages === 0 || context.includes(placeholder)) return context;
  return `${Array.from({ length: nImages }, () => placeholder).join(' ')}\n${context}`;
}

export const QWEN_1_5_SYSTEM = 'You are a helpful assistant.';

/**
 * `--model llava_onevision --model_args conv_template=qwen_1_5`: LLaVA-NeXT's conv_qwen (sep_style CHATML, sep
 * "<|im_end|>"), rendered as system + sep + "\n", then role + "\n" + message + sep + "\n" per turn, then the
 * assistant role + "\n".
 */
export const LLAVA_ONEVISION_QWEN_1_5: PromptFormat = {
  name: 'llava_onevision/qwen_1_5',
  imagePlaceholder: '<image>',
  render(context, nImages) {
    const question = withImagePlaceholders(context, nImages, this.imagePlaceholder);
    const full = `<|im_start|>system\n${QWEN_1_5_SYSTEM}<|im_end|>\n<|im_start|>user\n${question}<|im_end|>\n<|im_start|>assistant\n`;
    return splitAtLastImage(full, this.imagePlaceholder, nImages, this.name);
  },
};

/**
 * `--model llava_hf` (lmms-eval#722): the context gets the image placeholders as above and is sent as ONE string user
 * message through the checkpoint's chat template. Whether a system turn appears depends on that template (the HF
 * processor's chat_template.json has none; a tokenizer ChatML template adds Qwen's default) — pin the rendering.
 */
export function llavaHfFormat(template: FoundTemplate, variables: Record<string, unknown> = {}): PromptFormat {
  return {
    name: `llava_hf(${template.source})`,
    imagePlaceholder: '<image>',
    render(context, nImages) {
      const content = withImagePlaceholders(context, nImages, this.imagePlaceholder);
      const full = renderChatTemplate(template.template, [{ role: 'user', content }], { addGenerationPrompt: true, variables }, template.source);
      return splitAtLastImage(full, this.imagePlaceholder, nImages, this.name);
    },
  };
}

/** One Qwen2.5-VL image as the chat template writes it; the processor expands <|image_pad|> to the image's tokens. */
export const QWEN2_5_VL_IMAGE = '<|vision_start|><|image_pad|><|vision_end|>';

/** `--model qwen2_5_vl` / `--model qwen2_vl`: the system message, every image before the text in one user turn. */
function qwenVlFormat(name: string): PromptFormat {
  return {
    name,
    imagePlaceholder: QWEN2_5_VL_IMAGE,
    render(context, nImages) {
      const images = Array.from({ length: nImages }, () => QWEN2_5_VL_IMAGE).join('');
      const full = `<|im_start|>system\n${QWEN_1_5_SYSTEM}<|im_end|>\n<|im_start|>user\n${images}${context}<|im_end|>\n<|im_start|>assistant\n`;
      return splitAtLastImage(full, this.imagePlaceholder, nImages, this.name);
    },
  };
}

/**
 * `--model qwen2_5_vl`: explicit system message, all images before the text in one user turn, no separator between
 * the last image and the text (lmms-eval's image-size defaults there, min_pixels 256*28*28 and max_pixels 1605632,
 * are the processor's business, not the prompt's).
 */
export const QWEN2_5_VL: PromptFormat = qwenVlFormat('qwen2_5_vl');
/** `--model qwen2_vl`: the same rendering as Qwen2.5-VL (processor.apply_chat_template over the same messages). */
export const QWEN2_VL: PromptFormat = qwenVlFormat('qwen2_vl');

/** conv_llava_llama_3's system message (LLaVA-NeXT llava/conversation.py). */
export const LLAVA_LLAMA_3_SYSTEM = 'You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, ' +
  'and assist the user with a variety of tasks using natural language.';

/**
 * `--model llava --model_args pretrained=lmms-lab/llama3-llava-next-8b,conv_template=llava_llama_3` (the paper's
 * Llama-3-LLaVA-NeXT): the images as "<image> <image>\n" before the context (lmms-eval's llava wrapper), then
 * sep_style LLAMA_3, i.e. Meta-Llama-3-Instruct's chat template over [system, user] with the generation prompt:
 * BOS, then per message "<|start_header_id|>role<|end_header_id|>\n\n" + content.strip() + "<|eot_id|>", then the
 * assistant header.
 */
export const LLAVA_LLAMA_3: PromptFormat = {
  name: 'llava/llava_llama_3',
  imagePlaceholder: '<image>',
  render(context, nImages) {
    const turn = (role: string, content: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n${content.trim()}<|eot_id|>`;
    const user = withImagePlaceholders(context, nImages, this.imagePlaceholder);
    const full = `<|begin_of_text|>${turn('system', LLAVA_LLAMA_3_SYSTEM)}${turn('user', user)}<|start_header_id|>assistant<|end_header_id|>\n\n`;
    return splitAtLastImage(full, this.imagePlaceholder, nImages, this.name);
  },
};

/** lmms-eval's prompt format for each family's reference checkpoint: what the paper's benchmark numbers use. */
const LMMS_EVAL_FORMATS: Readonly<Record<string, PromptFormat>> = {
  llava_onevision: LLAVA_ONEVISION_QWEN_1_5,
  llava_next: LLAVA_LLAMA_3,
  qwen2_vl: QWEN2_VL,
  qwen2_5_vl: QWEN2_5_VL,
};

/** The lmms-eval prompt format of a model family (config.json model_type); names the families that have one. */
export function lmmsEvalFormat(family: string): PromptFormat {
  const f = LMMS_EVAL_FORMATS[family];
  if (!f) throw new KvlensInputError(`no lmms-eval prompt format for model family "${family}"; formats exist for ${Object.keys(LMMS_EVAL_FORMATS).join(', ')}`);
  return f;
}

/** Convenience: prefix + suffix. */
export const fullPrompt = (p: RenderedPrompt) => p.prefix + p.suffix;
