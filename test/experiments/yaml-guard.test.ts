// Experiment YAML under a size / nesting / time guard (issue 14): hostile files end in a KvlensInputError naming the
// file within the limits, and ordinary files (inline or in the worker) parse as before.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadExperimentFile } from '../../src/experiments/config.js';
import { flowDepth, parseYamlGuarded } from '../../src/util/guarded-yaml.js';
import { KvlensInputError } from '../../src/util/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'kvlens-yaml-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function refusedQuickly(text: string, maxMs: number, ...patterns: RegExp[]): void {
  const file = join(tmp, `f${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  const t0 = performance.now();
  assert.throws(() => loadExperimentFile(file), (e: unknown) => {
    assert.ok(e instanceof KvlensInputError, String(e));
    assert.ok(e.message.startsWith(file), e.message);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
  assert.ok(performance.now() - t0 < maxMs, `took ${Math.round(performance.now() - t0)} ms`);
}

test('8,000 unclosed [ (which crash V8 inside the yaml parser) are refused by the nesting scan', () => {
  refusedQuickly('['.repeat(8000), 1000, /nested 8000 deep/);
});

test('a 100 KB unbalanced YAML (~50 s in the parser, then 5 s to the time limit) is refused by the entries scan in milliseconds', () => {
  refusedQuickly('[{'.repeat(30) + 'a, '.repeat(33_000), 500, /33000 line breaks and commas exceeds the limit of 5000/, /KVLENS_LIMIT_YAML_ENTRIES/);
  refusedQuickly('a:\n' + '  - x\n'.repeat(6000), 500, /6001 line breaks and commas/);
  // commas inside quotes and comments are not entries
  assert.deepEqual(parseYamlGuarded(`q: "${','.repeat(6000)}" # ${','.repeat(6000)}\n`, 'q.yaml'), { q: ','.repeat(6000) });
});

test('with the entries limit raised, a file that makes the parser crawl is stopped at the time limit', () => {
  const old = { ms: process.env.KVLENS_LIMIT_PARSER_MS, n: process.env.KVLENS_LIMIT_YAML_ENTRIES };
  process.env.KVLENS_LIMIT_PARSER_MS = '1500';
  process.env.KVLENS_LIMIT_YAML_ENTRIES = '100000';
  try {
    refusedQuickly('[{'.repeat(30) + 'a, '.repeat(33_000), 4000, /stopped after 1500 ms/, /KVLENS_LIMIT_PARSER_MS/);
  } finally {
    if (old.ms === undefined) delete process.env.KVLENS_LIMIT_PARSER_MS; else process.env.KVLENS_LIMIT_PARSER_MS = old.ms;
    if (old.n === undefined) delete process.env.KVLENS_LIMIT_YAML_ENTRIES; else process.env.KVLENS_LIMIT_YAML_ENTRIES = old.n;
  }
});

test('a YAML file over the size limit is refused before parsing', () => {
  refusedQuickly(`a: "${'x'.repeat(1_100_000)}"\n`, 2000, /KVLENS_LIMIT_YAML_BYTES/);
});

test('ordinary YAML parses inline and in the worker alike; quotes, comments and block scalars do not count as nesting', () => {
  const small = 'experiment: flow\nlist: [1, [2, {a: 3}]]\nq: "[[[" # {{{\nt: |\n  [INST] x\n';
  assert.deepEqual(parseYamlGuarded(small, 's.yaml'), { experiment: 'flow', list: [1, [2, { a: 3 }]], q: '[[[', t: '[INST] x\n' });
  const big = `${small}${Array.from({ length: 400 }, (_, i) => `k${i}: [${i}, "v"]`).join('\n')}\n`;
  const v = parseYamlGuarded(big, 'b.yaml') as Record<string, unknown>;
  assert.deepEqual(v.k399, [399, 'v']);
  assert.deepEqual(v.list, [1, [2, { a: 3 }]]);
  assert.equal(flowDepth('a: [[1], {b: [2]}]').depth, 3);
  assert.throws(() => parseYamlGuarded(`${big}bad: [\n`, 'bad.yaml'), (e: unknown) => e instanceof KvlensInputError && /^bad\.yaml: not valid YAML/.test(e.message));
});
