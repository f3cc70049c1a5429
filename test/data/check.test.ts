// Malformed roots: every problem names the file and what is wrong; `kvlens data check` reports without crashing.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkDataset } from '../../src/data/check.js';
import { iteratePascal5i } from '../../src/data/loaders/pascal5i.js';
import { encodePalettePng } from '../../src/data/png.js';
import { generateSynthetic } from '../../src/data/synthetic/index.js';
import { runData } from '../../src/cli/commands/data.js';
import { CliUsageError } from '../../src/cli/args.js';
import { collect, tempDir } from './tmp.js';

const dir = tempDir('check');
after(dir.remove);

test('a clean synthetic root checks with counts and exit status 0', async () => {
  const root = join(dir.path, 'pope');
  const lines: string[] = [];
  assert.equal(await runData(['synth', 'pope', root, '--seed', '1', '--n', '2'], (s) => lines.push(s)), 0);
  assert.equal(await runData(['check', 'pope', root, '--split', 'popular'], (s) => lines.push(s)), 0);
  assert.match(lines.join('\n'), /pope at .*: 12 sample\(s\) loaded, 0 problem\(s\)\n {2}answer:no: 6\n {2}answer:yes: 6/);
});

test('missing folder -> fatal problem naming the folder; exit status 1', async () => {
  const out: string[] = [];
  assert.equal(await runData(['check', 'pascal5i', join(dir.path, 'nowhere')], (s) => out.push(s)), 1);
  assert.match(out.join('\n'), /FATAL: .*nowhere\/VOC2012\/JPEGImages: missing folder \(VOC2012 JPEG images\)/);
});

test('mask whose size disagrees with its image -> error naming the mask and both sizes', async () => {
  const root = join(dir.path, 'pascal');
  await generateSynthetic('pascal5i', root, { seed: 0, n: 8 });
  const [first] = await collect(iteratePascal5i(root, { fold: 0, split: 'val' }));
  const maskPath = join(root, 'VOC2012', 'SegmentationClassAug', `${first.id}.png`);
  writeFileSync(maskPath, encodePalettePng({ width: 5, height: 4, data: new Uint8Array(20) }));
  await assert.rejects(collect(iteratePascal5i(root, { fold: 0, split: 'val' })),
    new RegExp(`${first.id}\\.png: mask is 5x4 but its image .*${first.id}\\.jpg is ${first.mask.width}x${first.mask.height}`));
  const r = await checkDataset('pascal5i', root, { fold: 0, split: 'val' });
  assert.equal(r.fatal, null);
  // one problem per fold-file line of that image (an image with two fold classes is listed twice)
  assert.ok(r.problems.length >= 1);
  for (const p of r.problems) assert.ok(p.startsWith(`${maskPath}: mask is 5x4`), p);
});

test('truncated annotation files are reported (SPair pair JSON per pair, COCO instances as fatal)', async () => {
  const spair = join(dir.path, 'spair');
  await generateSynthetic('spair', spair, { seed: 0, n: 3 });
  const list = readFileSync(join(spair, 'Layout', 'large', 'test.txt'), 'utf8').trim().split('\n');
  const pairFile = join(spair, 'PairAnnotation', 'test', `${list[1]}.json`);
  truncateSync(pairFile, Math.floor(statSync(pairFile).size / 2));
  const r = await checkDataset('spair', spair, { split: 'test' });
  assert.equal(r.samples, 2);
  assert.equal(r.problems.length, 1);
  assert.ok(r.problems[0].startsWith(pairFile));
  assert.match(r.problems[0], /malformed JSON in SPair pair annotation .*truncated\?/);

  const coco = join(dir.path, 'coco');
  await generateSynthetic('coco', coco, { seed: 0, n: 2 });
  const inst = join(coco, 'annotations', 'instances_val2017.json');
  truncateSync(inst, 100);
  const out: string[] = [];
  assert.equal(await runData(['check', 'coco', coco, '--split', 'val2017'], (s) => out.push(s)), 1);
  assert.match(out.join('\n'), /FATAL: .*instances_val2017\.json: malformed JSON in COCO instances/);
});

test('a refs pickle with a forbidden opcode is refused, naming file, offset and opcode', async () => {
  const root = join(dir.path, 'refer');
  await generateSynthetic('refcoco', root, { seed: 0, n: 2 });
  const refs = join(root, 'refcoco', 'refs(unc).p');
  const bytes = readFileSync(refs);
  bytes[2] = 0x63; // GLOBAL where EMPTY_LIST was
  writeFileSync(refs, bytes);
  const r = await checkDataset('refcoco', root);
  assert.equal(r.samples, 0);
  assert.match(r.fatal ?? '', /refs\(unc\)\.p: pickle: opcode GLOBAL \(0x63\) is refused.*\(byte offset 2\)/);
});

test('unknown dataset and bad flags are usage errors (exit status 2 via the CLI), with "did you mean"', async () => {
  const out: string[] = [];
  await assert.rejects(runData(['check', 'imagenet', '/x'], (s) => out.push(s)), (e: Error) => e instanceof CliUsageError && /unknown dataset "imagenet" \(did you mean imagenet-s\?\)/.test(e.message));
  await assert.rejects(runData(['check', 'pascal5i', '/x', '--fold', 'one'], (s) => out.push(s)), (e: Error) => e instanceof CliUsageError && /--fold: expected an integer in 0\.\.3, got "one"/.test(e.message));
  await assert.rejects(runData(['frobnicate', 'pascal5i', '/x'], (s) => out.push(s)), CliUsageError);
  await assert.rejects(runData(['check', 'pascal5i', '/x', '--fodl', '1'], (s) => out.push(s)), (e: Error) => /unknown option --fodl \(did you mean --fold\?\)/.test(e.message));
  assert.deepEqual(out, []);
});

test('data check --fold all checks every fold\'s val and trn lists, as --fold all means for kvlens probe', async () => {
  const root = join(dir.path, 'p5i-all');
  const lines: string[] = [];
  assert.equal(await runData(['synth', 'pascal5i', root, '--n', '4'], (s) => lines.push(s)), 0);
  lines.length = 0;
  const status = await runData(['check', 'pascal5i', root, '--fold', 'all', '--json'], (s) => lines.push(s));
  const reports = JSON.parse(lines.join('\n')) as { fold: number; split: string; samples: number }[];
  assert.deepEqual(reports.map((r) => `${r.fold}/${r.split}`), ['0/val', '0/trn', '1/val', '1/trn', '2/val', '2/trn', '3/val', '3/trn']);
  assert.ok([0, 1].includes(status));
});
