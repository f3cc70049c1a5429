// Rewrites a kvlens-generated checkpoint into the layouts other transformers versions save: tensor names renamed in
// the safetensors header only (the data section is copied byte for byte) or split into shards with an index,
// config.json re-spelled, the chat template and the image-processor settings moved to other files. The renaming
// tables here are written out from the list, independently of src/models/weight-names.ts.

import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { layoutSafetensors, readSafetensorsHeader, readTensor, type TensorEntry } from '../../src/tensor/safetensors.js';

export type Json = Record<string, unknown>;

/** Legacy (transformers <= 4.51) prefix -> current (>= 4.52) prefix, per family. */
export const LLAVA_PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['language_model.model.', 'model.language_model.'],
  ['language_model.lm_head.', 'lm_head.'],
  ['vision_tower.', 'model.vision_tower.'],
  ['multi_modal_projector.', 'model.multi_modal_projector.'],
  ['image_newline', 'model.image_newline'],
];
export const QWEN_VL_PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['model.', 'model.language_model.'],
  ['visual.', 'model.visual.'],
];

export function renameByPrefix(table: ReadonlyArray<readonly [string, string]>): (name: string) => string {
  return (name) => {
    for (const [from, to] of table) if (name.startsWith(from)) return to + name.slice(from.length);
    return name;
  };
}

function readBytes(file: string, start: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, length, start);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/**
 * Copy model.safetensors with its tensors renamed in the header only: same data section bytes, same data_offsets;
 * the header is padded so the data section keeps its alignment modulo 4096.
 */
export function renameInHeader(src: string, dst: string, rename: (name: string) => string): void {
  const h = readSafetensorsHeader(src);
  const raw = JSON.parse(readBytes(src, 8, h.headerLength).toString('utf8')) as Json;
  const out: Json = {};
  for (const [k, v] of Object.entries(raw)) out[k === '__metadata__' ? k : rename(k)] = v;
  let json = JSON.stringify(out);
  const pad = (((8 + h.headerLength) - (8 + Buffer.byteLength(json))) % 4096 + 4096) % 4096;
  json += ' '.repeat(pad);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const data = readFileSync(src).subarray(h.dataStart);
  writeFileSync(dst, Buffer.concat([len, Buffer.from(json, 'utf8'), data]));
}

/** Split model.safetensors into `n` shards plus model.safetensors.index.json, tensors renamed; removes the single file. */
export function shard(dir: string, n: number, rename: (name: string) => string = (x) => x): void {
  const single = join(dir, 'model.safetensors');
  const h = readSafetensorsHeader(single);
  const entries = [...h.tensors.values()];
  const per = Math.ceil(entries.length / n);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < n; s++) {
    const part: TensorEntry[] = entries.slice(s * per, (s + 1) * per);
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    const { header, offsets } = layoutSafetensors(part.map((e) => ({ name: rename(e.name), dtype: e.dtype, shape: e.shape })), { format: 'pt' }, 64);
    const chunks: Buffer[] = [header];
    let pos = 0;
    part.forEach((e, i) => {
      if (offsets[i] > pos) chunks.push(Buffer.alloc(offsets[i] - pos));
      const t = readTensor(e);
      chunks.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      pos = offsets[i] + e.byteLength;
    });
    writeFileSync(join(dir, file), Buffer.concat(chunks));
    for (const e of part) weightMap[rename(e.name)] = file;
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: entries.reduce((a, e) => a + e.byteLength, 0) }, weight_map: weightMap }, null, 2));
  rmSync(single);
}

/** Copy a checkpoint directory (files only). */
export function copyDir(src: string, dst: string): void {
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(src, { withFileTypes: true })) if (f.isFile()) copyFileSync(join(src, f.name), join(dst, f.name));
}

export function readJson(path: string): Json {
  return JSON.parse(readFileSync(path, 'utf8')) as Json;
}

export function writeJson(path: string, v: unknown): void {
  writeFileSync(path, JSON.stringify(v, null, 2) + '\n');
}

export function editJson(path: string, edit: (v: Json) => Json): void {
  writeJson(path, edit(readJson(path)));
}

/** Every "torch_dtype" key renamed "dtype" (transformers v5), nested configs included. */
export function toDtype(v: Json): Json {
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) out[k === 'torch_dtype' ? 'dtype' : k] = typeof x === 'object' && x !== null && !Array.isArray(x) ? toDtype(x as Json) : x;
  return out;
}

/** rope_scaling + rope_theta -> rope_parameters {rope_type, ..., rope_theta} (transformers v5), `type` dropped. */
export function toRopeParameters(text: Json, defaultTheta: number): Json {
  const { rope_scaling: scaling, rope_theta: theta, ...rest } = text;
  const { type, rope_type: ropeType, ...params } = (scaling ?? {}) as Json;
  return { ...rest, rope_parameters: { rope_type: ropeType ?? type ?? 'default', ...params, rope_theta: theta ?? defaultTheta } };
}

/** The language-model fields of a flat Qwen2-VL config moved into text_config (transformers 4.52+). */
export const QWEN_TEXT_KEYS = [
  'hidden_act', 'hidden_size', 'intermediate_size', 'max_position_embeddings', 'max_window_layers', 'num_attention_heads',
  'num_hidden_layers', 'num_key_value_heads', 'rms_norm_eps', 'rope_scaling', 'rope_theta', 'sliding_window', 'use_sliding_window',
  'vocab_size', 'use_cache', 'attention_dropout', 'initializer_range', 'torch_dtype', 'tie_word_embeddings', 'bos_token_id', 'eos_token_id',
];

export function nestQwenText(cfg: Json, textModelType: string): Json {
  const text: Json = { model_type: textModelType };
  const top: Json = {};
  for (const [k, v] of Object.entries(cfg)) {
    if (QWEN_TEXT_KEYS.includes(k)) text[k] = v;
    if (!QWEN_TEXT_KEYS.includes(k) || k === 'torch_dtype' || k === 'tie_word_embeddings') top[k] = v;
  }
  return { ...top, text_config: text };
}

/** Move tokenizer_config.json's chat_template into chat_template.jinja or chat_template.json. */
export function moveTemplate(dir: string, to: 'chat_template.jinja' | 'chat_template.json'): string {
  const tc = readJson(join(dir, 'tokenizer_config.json'));
  const template = tc.chat_template as string;
  delete tc.chat_template;
  writeJson(join(dir, 'tokenizer_config.json'), tc);
  if (to === 'chat_template.jinja') writeFileSync(join(dir, to), template);
  else writeJson(join(dir, to), { chat_template: template });
  return template;
}

/**
 * preprocessor_config.json nested into processor_config.json as "image_processor" (transformers v5), its type
 * renamed to the fast class; `edit` re-spells fields.
 */
export function nestImageProcessor(dir: string, edit: (pre: Json) => Json = (x) => x): void {
  const prePath = join(dir, 'preprocessor_config.json');
  const pre = readJson(prePath);
  rmSync(prePath);
  const procPath = join(dir, 'processor_config.json');
  const proc = existsSync(procPath) ? readJson(procPath) : {};
  writeJson(procPath, { ...proc, image_processor: edit({ ...pre, image_processor_type: `${String(pre.image_processor_type)}Fast` }) });
}
