// A byte-level BPE tokenizer in the slow Qwen2 layout (vocab.json + merges.txt + tokenizer_config.json), trained
// deterministically on a small built-in corpus, so the generated tiny checkpoint tokenizes like a real one.

/** GPT-2's byte -> printable unicode character table (bytes that are printable map to themselves). */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  return table;
}

/** Words and phrases the demo's prompts use (lmms-eval prompts, synthetic class names), weighted by repetition. */
export const DEFAULT_CORPUS = [
  'Is there a circle in the image?', 'Is there a square in the image?', 'Is there a triangle in the image?',
  'Answer the question using a single word or phrase.', 'You are a helpful assistant.', 'What is the object in the image?',
  'Note: You only need to respond with A, B without providing any additional information.',
  'Select from the following choices.', '(A) the second image', '(B) the third image', 'Yes', 'No', 'yes', 'no',
  'a photo of a', 'the reference image', 'which one shares the same style', 'night highway', 'circle square triangle disc ring cross star',
  'red green blue yellow', 'object background foreground', 'Please answer yes or no.',
].join('\n');

export interface BpeFiles {
  vocab: Record<string, number>;
  merges: string[];
}

/** Train `nMerges` byte-level BPE merges on `corpus` (ties broken by pair string, so the result is deterministic). */
export function trainByteBpe(corpus: string, nMerges: number): BpeFiles {
  const b2u = bytesToUnicode();
  const vocab: Record<string, number> = {};
  b2u.forEach((ch, b) => { vocab[ch] = b; }); // id == byte value, like the reference fixture
  // Pre-tokenise roughly like GPT-2/Qwen2: words keep their leading space.
  const words = new Map<string, number>();
  for (const w of corpus.match(/ ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+/g) ?? []) {
    const enc = [...Buffer.from(w, 'utf8')].map((b) => b2u[b]).join('\u0000');
    words.set(enc, (words.get(enc) ?? 0) + 1);
  }
  let seqs = [...words.entries()].map(([w, c]) => ({ syms: w.split('\u0000'), count: c }));
  const merges: string[] = [];
  for (let m = 0; m < nMerges; m++) {
    const counts = new Map<string, number>();
    for (const { syms, count } of seqs) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = `${syms[i]} ${syms[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + count);
      }
    }
    let best = '';
    let bestN = 1; // a merge must occur at least twice
    for (const [k, n] of counts) if (n > bestN || (n === bestN && best !== '' && k < best)) { best = k; bestN = n; }
    if (!best) break;
    const [a, b] = best.split(' ');
    merges.push(best);
    vocab[a + b] = 256 + merges.length - 1;
    seqs = seqs.map(({ syms, count }) => {
      const out: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) { out.push(a + b); i++; } else out.push(syms[i]);
      }
      return { syms: out, count };
    });
  }
  return { vocab, merges };
}

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<image>', '<video>'] as const;

/**
 * ChatML template (Qwen / LLaVA-OneVision style). Content may be a string or a list of {type: 'image'} and
 * {type: 'text', text} parts, rendered in order; each image part becomes "<image>\n". A default system turn is added
 * unless the conversation has one or `add_system_prompt` is false.
 */
export const CHATML_TEMPLATE =
  "{%- for message in messages -%}" +
  "{%- if loop.first and message['role'] != 'system' and add_system_prompt is not false -%}" +
  "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}" +
  '{%- endif -%}' +
  "{{ '<|im_start|>' + message['role'] + '\\n' }}" +
  "{%- if message['content'] is string -%}{{ message['content'] }}" +
  "{%- else -%}{%- for part in message['content'] -%}" +
  "{%- if part['type'] == 'image' -%}{{ '<image>\\n' }}{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}" +
  '{%- endfor -%}{%- endif -%}' +
  "{{ '<|im_end|>\\n' }}" +
  '{%- endfor -%}' +
  "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}";

export function tokenizerConfig(firstSpecialId: number): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  SPECIAL_TOKENS.forEach((t, i) => {
    decoder[String(firstSpecialId + i)] = { content: t, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  });
  return {
    added_tokens_decoder: decoder,
    additional_special_tokens: ['<|im_start|>', '<|im_end|>', '<image>', '<video>'],
    bos_token: null,
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: '<|im_end|>',
    errors: 'replace',
    model_max_length: 32768,
    pad_token: '<|endoftext|>',
    processor_class: 'LlavaOnevisionProcessor',
    split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer',
    unk_token: null,
  };
}
