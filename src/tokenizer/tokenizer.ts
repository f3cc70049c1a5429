// Text tokenizer of a checkpoint directory, as transformers loads it:
// - tokenizer.json (fast format) when present, used as is;
// - otherwise the slow byte-level BPE files (vocab.json + merges.txt, GPT-2 / Qwen2 style) converted to the
//   equivalent tokenizer.json object (what transformers' convert_slow_tokenizer builds: NFC normaliser for Qwen2,
//   the pre-tokenizer regex split + ByteLevel, BPE model, ByteLevel decoder).
// Added / special tokens come from tokenizer_config.json `added_tokens_decoder` and added_tokens.json; they are
// matched before BPE and never split. Encoding is done by @huggingface/tokenizers.

import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { KvlensInputError } from '../util/errors.js';
import { readJsonFile } from '../util/json.js';

/** The Qwen2 pre-tokenizer split (transformers' PRETOKENIZE_REGEX of Qwen2Tokenizer). */
export const QWEN2_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** GPT-2's split, used by the slow GPT2Tokenizer. */
export const GPT2_SPLIT_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

interface AddedTokenSpec {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** Added tokens of a slow tokenizer: tokenizer_config.json added_tokens_decoder, then added_tokens.json. */
function collectAddedTokens(config: Record<string, unknown>, addedJson: Record<string, number> | undefined, vocabSize: number): AddedTokenSpec[] {
  const byId = new Map<number, AddedTokenSpec>();
  const decoder = (config.added_tokens_decoder ?? {}) as Record<string, Record<string, unknown>>;
  for (const [idStr, t] of Object.entries(decoder)) {
    const content = tokenContent(t);
    if (content === undefined) continue;
    byId.set(Number(idStr), {
      id: Number(idStr), content,
      single_word: Boolean(t.single_word), lstrip: Boolean(t.lstrip), rstrip: Boolean(t.rstrip),
      normalized: t.normalized === undefined ? !t.special : Boolean(t.normalized), special: Boolean(t.special),
    });
  }
  const specialNames = new Set<string>();
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
    const c = tokenContent(config[key]);
    if (c) specialNames.add(c);
  }
  for (const t of (config.additional_special_tokens ?? []) as unknown[]) {
    const c = tokenContent(t);
    if (c) specialNames.add(c);
  }
  for (const [content, id] of Object.entries(addedJson ?? {})) {
    if (!byId.has(id)) {
      const special = specialNames.has(content);
      byId.set(id, { id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special });
    }
  }
  for (const t of byId.values()) {
    if (t.id < 0) throw new KvlensInputError(`added token ${JSON.stringify(t.content)} has a negative id`);
    void vocabSize;
  }
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

/** tokenizer.json object equivalent to a slow byte-level BPE tokenizer (vocab.json + merges.txt). */
export function slowBpeToTokenizerJson(
  vocab: Record<string, number>, mergesText: string, added: AddedTokenSpec[], tokenizerClass: string,
): Record<string, unknown> {
  const merges = mergesText.split('\n')
    .filter((line, i) => line.length > 0 && !(i === 0 && line.startsWith('#version')))
    .map((line) => {
      const parts = line.split(' ');
      if (parts.length !== 2) throw new KvlensInputError(`merges.txt: line ${JSON.stringify(line)} is not "a b"`);
      return `${parts[0]} ${parts[1]}`;
    });
  const isQwen2 = /qwen2/i.test(tokenizerClass);
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: isQwen2 ? { type: 'NFC' } : null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: isQwen2 ? QWEN2_SPLIT_REGEX : GPT2_SPLIT_REGEX }, behavior: 'Isolated', invert: false },
        byteLevel,
      ],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
}

/** A checkpoint's tokenizer plus the bits of tokenizer_config.json the prompt builder needs. */
export class TextTokenizer {
  private constructor(
    private readonly tok: Tokenizer,
    /** tokenizer_config.json as read (chat_template, special token names) */
    readonly config: Readonly<Record<string, unknown>>,
    readonly source: string,
  ) {}

  /** Load from a checkpoint directory (tokenizer.json, else vocab.json + merges.txt). */
  static async fromPretrained(dir: string): Promise<TextTokenizer> {
    const configPath = join(dir, 'tokenizer_config.json');
    const config = existsSync(configPath) ? (await readJsonFile(configPath)) as Record<string, unknown> : {};
    const fastPath = join(dir, 'tokenizer.json');
    if (existsSync(fastPath)) {
      const json = await readJsonFile(fastPath);
      return new TextTokenizer(TextTokenizer.build(json as object, config, fastPath), config, fastPath);
    }
    const vocabPath = join(dir, 'vocab.json');
    const mergesPath = join(dir, 'merges.txt');
    if (!existsSync(vocabPath) || !existsSync(mergesPath)) {
      throw new KvlensInputError('no tokenizer found: expected tokenizer.json, or vocab.json + merges.txt', dir);
    }
    const vocab = (await readJsonFile(vocabPath)) as Record<string, number>;
    const mergesText = await readFile(mergesPath, 'utf8');
    const addedPath = join(dir, 'added_tokens.json');
    const addedJson = existsSync(addedPath) ? (await readJsonFile(addedPath)) as Record<string, number> : undefined;
    const added = collectAddedTokens(config, addedJson, Object.keys(vocab).length);
    const tokClass = typeof config.tokenizer_class === 'string' ? config.tokenizer_class : 'Qwen2Tokenizer';
    const json = slowBpeToTokenizerJson(vocab, mergesText, added, tokClass);
    return new TextTokenizer(TextTokenizer.build(json, config, vocabPath), config, vocabPath);
  }

  private static build(json: object, config: Record<string, unknown>, where: string): Tokenizer {
    try {
      return new Tokenizer(json, config);
    } catch (e) {
      throw new KvlensInputError(`cannot build the tokenizer (${(e as Error).message})`, where);
    }
  }

  /** Token ids of `text`; special-token strings in the text become their ids (never split). */
  encode(text: string, addSpecialTokens = true): number[] {
    return this.tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  tokenize(text: string): string[] {
    return this.tok.tokenize(text);
  }

  decode(ids: readonly number[], skipSpecialTokens = false): string {
    return this.tok.decode([...ids], { skip_special_tokens: skipSpecialTokens });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** Content of a named special token in tokenizer_config.json (e.g. "eos_token"), if any. */
  specialToken(name: string): string | undefined {
    return tokenContent(this.config[name]);
  }
}
