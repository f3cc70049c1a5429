// Provenance values recorded in a store's manifest: the kvlens version, the model config hash and the weights hash.

import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KvlensInputError } from '../util/errors.js';
import type { WeightsIdentity } from './format.js';

let cachedVersion: string | undefined;

/** The version in kvlens' package.json (found by walking up from this module: src/ and dist/src/ sit at different depths). */
export function kvlensVersion(): string {
  if (cachedVersion) return cachedVersion;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'kvlens' && pkg.version) return (cachedVersion = pkg.version);
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('kvlens package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** sha256 (hex) of a model's config.json; `model` is the model directory or the config file itself. */
export function modelConfigSha256(model: string): string {
  const path = existsSync(model) && statSync(model).isDirectory() ? join(model, 'config.json') : model;
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new KvlensInputError(`cannot read the model config (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  return createHash('sha256').update(bytes).digest('hex');
}

export type WeightsHashMethod = 'header' | 'content';

/** The model identity a store records: absolute path, config hash and weights hash. */
export function modelIdentity(modelDir: string, weights: WeightsHashMethod = 'header'): { path: string; configSha256: string; weights: WeightsIdentity } {
  return { path: resolve(modelDir), configSha256: modelConfigSha256(modelDir), weights: weightsIdentity(modelDir, weights) };
}

/** Largest safetensors header accepted (the format's own readers cap it at 100 MB). */
const MAX_HEADER = 100 * 1024 * 1024;

/**
 * sha256 over the model's *.safetensors files in name order: each file's name, size and either its header (8-byte
 * length + JSON: every tensor's name, dtype, shape and offsets; cheap, reads kilobytes) or, with "content", every
 * byte. A checkpoint directory without safetensors (a config file given directly) hashes to the empty list.
 */
export function weightsIdentity(model: string, method: WeightsHashMethod = 'header'): WeightsIdentity {
  const dir = existsSync(model) && statSync(model).isDirectory() ? model : dirname(model);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.safetensors')).sort();
  } catch (e) {
    throw new KvlensInputError(`cannot list the model directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, dir);
  }
  const all = createHash('sha256');
  for (const name of names) {
    const path = join(dir, name);
    const size = statSync(path).size; // follows symlinks (HF cache snapshots link into blobs/)
    all.update(`${name}\0${size}\0`);
    all.update(method === 'content' ? hashWhole(path) : headerBytes(path, size));
  }
  return { method, files: names.length, sha256: all.digest('hex') };
}

function headerBytes(path: string, size: number): Buffer {
  return withFd(path, (fd) => {
    const len = Buffer.alloc(8);
    if (size < 8 || readSync(fd, len, 0, 8, 0) !== 8) throw new KvlensInputError('not a safetensors file (shorter than its 8-byte header length)', path);
    const n = Number(len.readBigUInt64LE(0));
    if (n > MAX_HEADER || 8 + n > size) throw new KvlensInputError(`safetensors header length ${n} does not fit the file (${size} bytes)`, path);
    const header = Buffer.alloc(8 + n);
    len.copy(header);
    for (let done = 0; done < n;) {
      const got = readSync(fd, header, 8 + done, n - done, 8 + done);
      if (got <= 0) throw new KvlensInputError(`unexpected end of file in the safetensors header at byte ${8 + done}`, path);
      done += got;
    }
    return header;
  });
}

/** sha256 of a whole file, read in 8 MiB chunks. */
export function hashWhole(path: string): Buffer {
  return withFd(path, (fd) => {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
    for (let pos = 0; ;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      hash.update(buf.subarray(0, n));
      pos += n;
    }
    return hash.digest();
  });
}

function withFd<T>(path: string, f: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new KvlensInputError(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  try {
    return f(fd);
  } finally {
    closeSync(fd);
  }
}
