// Chat templates: find the checkpoint's template the way transformers' processors do, render it with
// @huggingface/jinja, and build conversations (system prompt on/off, text before the image, several images).

import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { KvlensInputError } from '../util/errors.js';

/**
 * Built-in ChatML (Qwen / LLaVA-OneVision style) for checkpoints without a template. Content is a string or a list
 * of {type: 'image'} / {type: 'text', text} parts rendered in order; an image part becomes "<image>\n".
 * Qwen's default system turn ("You are a helpful assistant.") is added unless the conversation starts with a
 * system message or `add_system_prompt` is false.
 */
export const BUILTIN_CHATML_TEMPLATE =
  "{%- for message in messages -%}" +
  "{%- if loop.first and message['role'] != 'system' and add_system_prompt is not false -%}" +
  "{{ '<|im_start|>system\\n' + (default_system_prompt if default_system_prompt is defined else 'You are a helpful assistant.') + '<|im_end|>\\n' }}" +
  '{%- endif -%}' +
  "{{ '<|im_start|>' + message['role'] + '\\n' }}" +
  "{%- if message['content'] is string -%}{{ message['content'] }}" +
  '{%- else -%}{%- for part in message.content -%}' +
  "{%- if part['type'] == 'image' -%}{{ '<image>\\n' }}{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}" +
  '{%- endfor -%}{%- endif -%}' +
  "{{ '<|im_end|>\\n' }}" +
  '{%- endfor -%}' +
  "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}";

/**
 * Built-in Qwen2-VL / Qwen2.5-VL ChatML: like BUILTIN_CHATML_TEMPLATE, but an image part is
 * "<|vision_start|><|image_pad|><|vision_end|>" with no newline (the released checkpoints' template); the processor
 * then repeats <|image_pad|> once per merged token.
 */
export const BUILTIN_QWEN2VL_TEMPLATE = BUILTIN_CHATML_TEMPLATE.replace("{{ '<image>\\n' }}", "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}");

/**
 * Built-in Llama-3 template of the LLaVA-NeXT (llama3-llava-next) checkpoints: "<|begin_of_text|>" once, then per turn
 * "<|start_header_id|>role<|end_header_id|>\n\n" + parts in order (an image part is "<image>\n") + "<|eot_id|>". No
 * default system turn.
 */
export const BUILTIN_LLAMA3_TEMPLATE =
  "{{- '<|begin_of_text|>' -}}" +
  "{%- for message in messages -%}" +
  "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}" +
  "{%- if message['content'] is string -%}{{ message['content'] }}" +
  '{%- else -%}{%- for part in message.content -%}' +
  "{%- if part['type'] == 'image' -%}{{ '<image>\\n' }}{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}" +
  '{%- endfor -%}{%- endif -%}' +
  "{{ '<|eot_id|>' }}" +
  '{%- endfor -%}' +
  "{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif -%}";

export type ContentPart = { type: 'image' } | { type: 'text'; text: string };
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string | ContentPart[];
}

export interface FoundTemplate {
  /** the file it came from ("<dir>/chat_template.jinja", ...) or "builtin:<name>" */
  readonly source: string;
  readonly template: string;
  /** Other files that hold a different template and were not used (transformers' precedence), one sentence each. */
  readonly notes?: readonly string[];
}

async function readJsonFile(path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new KvlensInputError(`cannot read JSON (${(e as Error).message})`, path);
  }
}

/** tokenizer_config chat_template may be a string or a list of {name, template}; take "default" or the first. */
function pickTemplate(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = v as { name?: string; template?: string }[];
    return (named.find((t) => t.name === 'default') ?? named[0])?.template;
  }
  return undefined;
}

/**
 * Where a checkpoint's chat template can be, in the order transformers' processor takes it: the legacy processor
 * file chat_template.json (it wins when present), the raw chat_template.jinja that newer versions write (the
 * tokenizer also reads it over its own), the "chat_template" key of processor_config.json (older processors), then
 * the tokenizer's tokenizer_config.json.
 */
const TEMPLATE_SOURCES: ReadonlyArray<{ readonly file: string; readonly read: (path: string) => Promise<string | undefined> }> = [
  { file: 'chat_template.json', read: async (p) => pickTemplate((await readJsonFile(p)).chat_template) },
  { file: 'chat_template.jinja', read: (p) => readFile(p, 'utf8') },
  { file: 'processor_config.json', read: async (p) => pickTemplate((await readJsonFile(p)).chat_template) },
  { file: 'tokenizer_config.json', read: async (p) => pickTemplate((await readJsonFile(p)).chat_template) },
];

/**
 * The checkpoint's chat template by transformers' precedence (TEMPLATE_SOURCES), else `fallback` (default: the
 * built-in ChatML). Files further down that hold a different template are named in `notes`.
 */
export async function findChatTemplate(dir: string, fallback: FoundTemplate = { source: 'builtin:chatml', template: BUILTIN_CHATML_TEMPLATE }): Promise<FoundTemplate> {
  const found: FoundTemplate[] = [];
  for (const { file, read } of TEMPLATE_SOURCES) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    const template = await read(path);
    if (template) found.push({ source: path, template });
  }
  if (found.length === 0) return fallback;
  const [used, ...rest] = found;
  const notes = rest.filter((t) => t.template !== used.template).map((t) => `${t.source} holds a different chat template; ${used.source} was used, as transformers does`);
  return notes.length ? { ...used, notes } : used;
}

export interface RenderOptions {
  readonly addGenerationPrompt?: boolean;
  /** extra variables: bos_token, eos_token, add_system_prompt, ... */
  readonly variables?: Record<string, unknown>;
}

export function renderChatTemplate(template: string, messages: readonly ChatMessage[], opts: RenderOptions = {}, where = 'chat_template'): string {
  let compiled: Template;
  try {
    compiled = new Template(template);
  } catch (e) {
    throw new KvlensInputError(`chat template does not parse (${(e as Error).message})`, where);
  }
  try {
    return compiled.render({
      messages: messages as unknown as Record<string, unknown>[],
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      ...opts.variables,
    });
  } catch (e) {
    throw new KvlensInputError(`chat template failed to render (${(e as Error).message})`, where);
  }
}

export interface ConversationSpec {
  /** number of images placed in the user turn */
  readonly nImages: number;
  /** user text after the image(s) */
  readonly question?: string;
  /** user text before the image(s), verbatim (include your own separator, e.g. a trailing "\n") */
  readonly prefix?: string;
  /** a string adds a system turn; null or false leaves it out (also suppresses a template's default one) */
  readonly systemPrompt?: string | null | false;
}

/** One user turn: [prefix text] [image]*n [question text], optionally preceded by a system turn. */
export function buildConversation(spec: ConversationSpec): ChatMessage[] {
  const content: ContentPart[] = [];
  if (spec.prefix) content.push({ type: 'text', text: spec.prefix });
  for (let i = 0; i < spec.nImages; i++) content.push({ type: 'image' });
  if (spec.question) content.push({ type: 'text', text: spec.question });
  const messages: ChatMessage[] = [];
  if (typeof spec.systemPrompt === 'string') messages.push({ role: 'system', content: [{ type: 'text', text: spec.systemPrompt }] });
  messages.push({ role: 'user', content });
  return messages;
}
