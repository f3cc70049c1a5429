// Prompt building: conversation -> template text -> token ids, then each image placeholder id expanded to that
// image's token count (what HF processors do by repeating the placeholder string before tokenising; expanding the
// id after tokenising gives the same ids because special tokens are never merged with their neighbours).

import { KvlensInputError } from '../util/errors.js';
import { buildConversation, renderChatTemplate, type ChatMessage, type FoundTemplate } from './chat-template.js';
import type { TextTokenizer } from './tokenizer.js';

export interface PromptInput {
  /** A ready prompt string (already templated) with one placeholder per image; used verbatim. */
  readonly text?: string;
  /** A conversation rendered with the checkpoint's chat template. */
  readonly messages?: readonly ChatMessage[];
  /** Otherwise: one user turn [prefix] [images] [question]. */
  readonly question?: string;
  readonly prefix?: string;
  /** string: add a system turn; null / false: none (also turns off the built-in template's default); undefined: template default */
  readonly systemPrompt?: string | null | false;
  /** default true */
  readonly addGenerationPrompt?: boolean;
}

/** Template variables transformers passes besides messages: the special tokens by name. */
function specialTokenVariables(tok: TextTokenizer): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const name of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    const v = tok.specialToken(name);
    if (v !== undefined) vars[name] = v;
  }
  return vars;
}

/** The prompt string for `input` and `nImages` images. */
export function renderPrompt(input: PromptInput, nImages: number, template: FoundTemplate, tok: TextTokenizer): string {
  const given = [input.text !== undefined, input.messages !== undefined].filter(Boolean).length;
  if (given > 1) throw new KvlensInputError('give either text or messages, not both');
  if (input.text !== undefined) {
    if (input.prefix !== undefined || input.question !== undefined || input.systemPrompt !== undefined) {
      throw new KvlensInputError('text is a finished prompt: prefix, question and systemPrompt do not apply to it');
    }
    return input.text;
  }
  let messages = input.messages;
  if (messages === undefined) {
    messages = buildConversation({ nImages, question: input.question, prefix: input.prefix, systemPrompt: input.systemPrompt });
  } else if (typeof input.systemPrompt === 'string' && messages[0]?.role !== 'system') {
    messages = [{ role: 'system', content: [{ type: 'text', text: input.systemPrompt }] }, ...messages];
  }
  const variables: Record<string, unknown> = { ...specialTokenVariables(tok) };
  if (input.systemPrompt === null || input.systemPrompt === false) variables.add_system_prompt = false;
  return renderChatTemplate(template.template, messages, { addGenerationPrompt: input.addGenerationPrompt ?? true, variables }, template.source);
}

/** Where each image's tokens landed in the expanded ids: positions [start, end). */
export interface ImageRun {
  readonly image: number;
  readonly start: number;
  readonly end: number;
}

/**
 * Replace the k-th occurrence of `placeholderId` by counts[k] copies of `imageTokenId` (usually the same id).
 * Throws a KvlensInputError when the number of placeholders differs from the number of images.
 */
export function expandImagePlaceholders(
  ids: readonly number[], placeholderId: number, counts: readonly number[], imageTokenId = placeholderId, placeholderName = '<image>',
): { ids: number[]; runs: ImageRun[] } {
  const found = ids.reduce((n, id) => n + (id === placeholderId ? 1 : 0), 0);
  if (found !== counts.length) {
    throw new KvlensInputError(
      `the prompt has ${found} image placeholder(s) ${placeholderName} but ${counts.length} image(s) were given; they must match one to one`);
  }
  const out: number[] = [];
  const runs: ImageRun[] = [];
  let k = 0;
  for (const id of ids) {
    if (id !== placeholderId) {
      out.push(id);
      continue;
    }
    const start = out.length;
    for (let i = 0; i < counts[k]; i++) out.push(imageTokenId);
    runs.push({ image: k, start, end: out.length });
    k++;
  }
  return { ids: out, runs };
}
