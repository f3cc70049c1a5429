// The typed public API as a consumer sees it: test/consumer is installed against the built package (node_modules/kvlens
// -> this repository, resolved through package.json exports/types), typechecked with strict settings, and run: one
// extraction through the package, whose stored values equal the model's forward. The consumer's tsconfig checks the
// package's declarations too (skipLibCheck false); "DOM" is in its lib only because onnxruntime-common's own
// declarations name browser types.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TINY_MODELS } from '../../src/models/synthetic/index.js';
import { writeImages } from '../extract/helpers.js';
import { repoRoot } from './import-graph.js';

const root = mkdtempSync(join(tmpdir(), 'kvlens-consumer-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('package.json main/types/exports point at the built src/index', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  assert.equal(pkg.main, 'dist/src/index.js');
  assert.equal(pkg.types, 'dist/src/index.d.ts');
  assert.deepEqual(pkg.exports['.'], { types: './dist/src/index.d.ts', import: './dist/src/index.js' });
  for (const f of [pkg.main, pkg.types]) assert.ok(existsSync(join(repoRoot, f)), `${f} is built`);
});

test('a consumer project typechecks against the package and runs one extraction through it', { timeout: 180_000 }, async () => {
  const project = join(root, 'consumer');
  cpSync(join(repoRoot, 'test', 'consumer'), project, { recursive: true, filter: (p) => !p.includes(`${join('consumer', 'dist')}`) });
  mkdirSync(join(project, 'node_modules', '@types'), { recursive: true });
  symlinkSync(repoRoot, join(project, 'node_modules', 'kvlens'), 'dir');
  symlinkSync(join(repoRoot, 'node_modules', '@types', 'node'), join(project, 'node_modules', '@types', 'node'), 'dir');
  const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(project, 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(tsc.status, 0, `tsc failed:\n${tsc.stdout}${tsc.stderr}`);

  const model = TINY_MODELS.llava_next.write(join(root, 'model'));
  const images = join(root, 'images');
  await writeImages(images, 2);
  const run = spawnSync(process.execPath, [join(project, 'dist', 'index.js'), model, images, join(root, 'store')], { encoding: 'utf8', cwd: project });
  assert.equal(run.status, 0, `the consumer failed:\n${run.stderr}`);
  const out = JSON.parse(run.stdout.trim().split('\n').pop()!);
  assert.equal(out.family, 'llava_next');
  assert.equal(out.added, 2);
  assert.deepEqual(out.taps, ['lm.0.attn.v', 'lm.1.attn.v']);
  assert.ok(out.grid[0] > 0 && out.grid[1] > 0 && out.grid[2] > 0);
  assert.ok(out.maxDiff < 1e-5, `stored values equal the forward's (max |diff| ${out.maxDiff})`);
});

test('a type error in a consumer is caught by the package types (the check can fail)', () => {
  const project = join(root, 'bad');
  mkdirSync(join(project, 'node_modules'), { recursive: true });
  cpSync(join(repoRoot, 'test', 'consumer', 'tsconfig.json'), join(project, 'tsconfig.json'));
  symlinkSync(repoRoot, join(project, 'node_modules', 'kvlens'), 'dir');
  // FeatureStore.read needs an image id and a tap; a number is not a tap name.
  const bad = "import { FeatureStore } from 'kvlens';\nconst s = FeatureStore.open('x');\ns.read('a', 42);\n";
  writeFileSync(join(project, 'index.ts'), bad);
  const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(project, 'tsconfig.json')], { encoding: 'utf8' });
  assert.notEqual(tsc.status, 0);
  assert.match(tsc.stdout, /index\.ts.*TS2345/);
});
