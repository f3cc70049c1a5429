// config.json at the parse edge: a null document, a non-object, or a model_type that names an Object.prototype member
// ends in a KvlensInputError naming config.json and the field (not a raw TypeError), from loadModel, loadProcessor, the
// family parsers and the CLI.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/models/index.js';
import { loadProcessor } from '../../src/preprocess/load.js';
import { parseLlavaOnevisionConfig } from '../../src/models/llava_onevision/config.js';
import { main } from '../../src/cli/main.js';
import { KvlensInputError } from '../../src/util/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'kvlens-config-edge-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function modelDir(name: string, configText: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), configText);
  return dir;
}

const namesConfig = (...patterns: RegExp[]) => (e: unknown) => {
  assert.ok(e instanceof KvlensInputError, `expected KvlensInputError, got ${String(e)}`);
  assert.match(e.message, /config\.json/);
  for (const p of patterns) assert.match(e.message, p);
  return true;
};

for (const [name, text, pattern] of [
  ['null', 'null', /expected a JSON object/],
  ['array', '[1, 2]', /expected a JSON object/],
  ['number-type', '{"model_type": 7}', /"model_type" must be a string, got 7/],
] as const) {
  test(`config.json ${name}: loadModel and loadProcessor name the file`, async () => {
    const dir = modelDir(`bad-${name}`, text);
    await assert.rejects(loadModel(dir), namesConfig(pattern));
    await assert.rejects(loadProcessor(dir), namesConfig(/expected a JSON object|"model_type" is 7/));
  });
}

for (const type of ['constructor', '__proto__', 'hasOwnProperty', 'toString']) {
  test(`model_type "${type}" is an unsupported model_type, not an Object.prototype member`, async () => {
    const dir = modelDir(`type-${type}`, JSON.stringify({ model_type: type }));
    await assert.rejects(loadModel(dir), namesConfig(new RegExp(`"model_type" is "${type}"`), /supported values: llava_onevision/));
    await assert.rejects(loadProcessor(dir), namesConfig(new RegExp(`"model_type" is "${type}"`)));
  });
}

test('a family parser given null names the file and what it expected', () => {
  assert.throws(() => parseLlavaOnevisionConfig(null, '/m/config.json'), (e: unknown) => e instanceof KvlensInputError && /\/m\/config\.json: expected a JSON object/.test(e.message));
});

test('kvlens constructor / __proto__ are unknown commands (exit 2)', async () => {
  const errors: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => { errors.push(a.join(' ')); };
  try {
    assert.equal(await main(['constructor']), 2);
    assert.equal(await main(['__proto__']), 2);
  } finally {
    console.error = orig;
  }
  assert.match(errors.join('\n'), /unknown command "constructor"/);
});
