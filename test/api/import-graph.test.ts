// The import graph of src/ and bench/: no cycles (static and dynamic imports, type-only imports included — a type cycle
// is still two modules that cannot be understood apart), and nothing above src/models names a family's folder
// (experiments, eval and probes talk to the model interface only).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { importCycles, importGraph, repoRoot } from './import-graph.js';

const graph = importGraph(['src', 'bench']);

test('the import graph is read (sanity: known edges are seen)', () => {
  assert.ok(graph.size > 100, `only ${graph.size} modules found under ${repoRoot}`);
  assert.ok(graph.get('src/cli/main.ts')?.includes('src/cli/commands/index.ts'), 'the dynamic import in cli/main is an edge');
  assert.ok(graph.get('src/experiments/flow.ts')?.includes('src/experiments/flow-tasks.ts'));
});

test('src/ and bench/ have no import cycles', () => {
  const cycles = importCycles(graph);
  assert.deepEqual(cycles.map((c) => c.join(' -> ')), []);
});

test('the cycle finder finds a planted cycle', () => {
  const g = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]);
  assert.deepEqual(importCycles(g).map((c) => [...c].sort()), [['a', 'b', 'c']]);
});

/**
 * A family folder is a subfolder of src/models (llava_onevision/, qwen2_vl/, siglip/ ...). Shared modules may be imported
 * from above: the top-level files (index, types, hf-config ...), the shared decoder and tower plumbing (lm/, vision/)
 * and the tiny-model table (synthetic/index.ts).
 */
const SHARED_MODEL_MODULES = /^src\/models\/([^/]+\.ts|lm\/|vision\/|synthetic\/index\.ts)/;
/** Names of family-specific classes (processors, models, extractors) that must not appear above the interface. */
const FAMILY_NAMES = /\b(LlavaOnevision\w*|LlavaNext\w*|Qwen2V[Ll]\w*|LlavaExtractor|FamilyExtractor|SiglipVisionModel|ClipVisionModel)\b/;
const ABOVE = /^src\/(experiments|eval|probes)\//;

test('no file under src/experiments, src/eval or src/probes imports from a family folder', () => {
  const bad: string[] = [];
  for (const [file, deps] of graph) {
    if (!ABOVE.test(file)) continue;
    for (const d of deps) if (d.startsWith('src/models/') && !SHARED_MODEL_MODULES.test(d)) bad.push(`${file} -> ${d}`);
  }
  assert.deepEqual(bad, []);
});

test('no file under src/experiments, src/eval or src/probes names a family class', () => {
  const bad: string[] = [];
  for (const file of graph.keys()) {
    if (!ABOVE.test(file)) continue;
    readFileSync(join(repoRoot, file), 'utf8').split('\n').forEach((line, i) => {
      const m = FAMILY_NAMES.exec(line);
      if (m) bad.push(`${file}:${i + 1} ${m[1]}`);
    });
  }
  assert.deepEqual(bad, []);
});
