import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HF_REF } from '../helpers/fixtures.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';
import { KvlensInputError } from '../../src/util/errors.js';

const MODEL = join(HF_REF, 'models', 'llava_onevision_tiny');

test('slow Qwen2 BPE (vocab.json + merges.txt): merges by rank, bytes as ids, special tokens never split', async () => {
  const tok = await TextTokenizer.fromPretrained(MODEL);
  // "i n" (rank 4) wins over "Ġ i" (rank 6), so " in" is Ġ + in, exactly as the HF slow tokenizer did in the fixture
  assert.deepEqual(tok.tokenize(' in the image?'), ['Ġ', 'in', 'Ġthe', 'Ġimage', '?']);
  const vocab = JSON.parse(readFileSync(join(MODEL, 'vocab.json'), 'utf8')) as Record<string, number>;
  assert.deepEqual(tok.encode(' the'), [vocab['Ġthe']]);
  // bytes: 'Z' is id 90, '\n' is byte 10 (mapped to Ċ), a non-ASCII char is its UTF-8 bytes
  assert.deepEqual(tok.encode('Z\n'), [90, vocab['Ċ']]);
  assert.equal(tok.encode('é').length, 2);
  // special tokens: one id each, even glued to text
  assert.deepEqual(tok.encode('<|im_start|>user<image><image>'), [301, 117, 115, vocab['er'], 303, 303]);
  assert.deepEqual(tok.encode('x<|im_end|>\n'), [120, 302, 10].map((b) => (b === 10 ? vocab['Ċ'] : b)));
  assert.equal(tok.decode(tok.encode('What is <image> here?')), 'What is <image> here?');
  assert.equal(tok.tokenToId('<video>'), 304);
  assert.equal(tok.specialToken('eos_token'), '<|endoftext|>');
});

test('tokenizer.json is preferred when present', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-tok-'));
  const json = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: 3, content: '<x>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null, pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null,
    model: { type: 'WordLevel', vocab: { a: 0, b: 1, '[UNK]': 2, '<x>': 3 }, unk_token: '[UNK]' },
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({}));
  const tok = await TextTokenizer.fromPretrained(dir);
  assert.deepEqual(tok.encode('a b<x>a'), [0, 1, 3, 0]);
});

test('missing tokenizer files and bad JSON are KvlensInputErrors naming the path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-tok-'));
  await assert.rejects(TextTokenizer.fromPretrained(dir), (e: unknown) => e instanceof KvlensInputError && e.message.includes('vocab.json + merges.txt'));
  writeFileSync(join(dir, 'tokenizer_config.json'), '{ nope');
  await assert.rejects(TextTokenizer.fromPretrained(dir), (e: unknown) => e instanceof KvlensInputError && e.message.includes('tokenizer_config.json: not valid JSON'));
});
