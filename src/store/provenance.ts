// Provenance values recorded in a store's manifest: the kvlens version and the model config hash.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KvlensInputError } from '../util/errors.js';

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

/** The model identity a store records: absolute path and config hash. */
export function modelIdentity(modelDir: string): { path: string; configSha256: string } {
  return { path: resolve(modelDir), configSha256: modelConfigSha256(modelDir) };
}
