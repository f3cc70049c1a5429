// The CLI contract, run as a user runs it (node bin/kvlens.js in a child process): every command and subcommand
// answers --help with exit 0 and its usage on stdout; an unknown option exits 2 with the usage and a "did you mean"
// where a known option is close; --version; no stack trace reaches the user; a port in use names --port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { commandNames, main } from '../../src/cli/main.js';
import { writeFixtureStore } from '../viewer/store-fixture.js';

const BIN = resolve('bin/kvlens.js');
const kvlens = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, KVLENS_DEBUG: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const SUBCOMMANDS: Record<string, string[][]> = { store: [['info'], ['merge']], data: [['check'], ['synth']] };
const noStack = (s: string) => !/\n\s+at .+:\d+:\d+\)?/.test(s);

/** main() in this process with console output captured (spawning ~50 processes is slow on a shared 2-core box). */
async function inProcess(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const { log, error } = console;
  console.log = (...a: unknown[]) => { out += `${a.join(' ')}\n`; };
  console.error = (...a: unknown[]) => { err += `${a.join(' ')}\n`; };
  try {
    return { code: await main(args), out, err };
  } finally {
    Object.assign(console, { log, error });
  }
}

test('every command and subcommand: --help exits 0 with its usage; an unknown option exits 2 with the usage', async () => {
  const names = commandNames();
  for (const c of ['store', 'parity', 'data', 'report', 'view', 'extract', 'probe', 'demo', 'run']) assert.ok(names.includes(c), c);
  const invocations = names.flatMap((c) => [[c], ...(SUBCOMMANDS[c] ?? []).map((s) => [c, ...s])]);
  for (const inv of invocations) {
    const help = await inProcess(...inv, '--help');
    assert.equal(help.code, 0, `${inv.join(' ')} --help: ${help.err}`);
    assert.match(help.out, /^usage:/, `${inv.join(' ')} --help prints its usage`);
    if (inv.length === 2) assert.match(help.out, new RegExp(`kvlens ${inv[0]} ${inv[1]}`), `${inv.join(' ')} --help is the subcommand's`);
    assert.equal((await inProcess(...inv, '-h')).code, 0);
    const bad = await inProcess(...inv, '--no-such-option');
    assert.equal(bad.code, 2, `${inv.join(' ')} --no-such-option: exit ${bad.code}\n${bad.err}`);
    assert.match(bad.err, new RegExp(`kvlens ${inv[0]}: unknown option --no-such-option`));
    assert.match(bad.err, /usage:/);
    assert.ok(noStack(bad.err), bad.err);
    // --help wins over a bad option next to it
    assert.equal((await inProcess(...inv, '--no-such-option', '--help')).code, 0);
  }
  // and the real process agrees on the exit codes
  assert.equal(kvlens('store', 'merge', '--help').code, 0);
  assert.equal(kvlens('store', 'merge', '--no-such-option').code, 2);
});

test('did you mean: close options, commands, subcommands and values', async () => {
  const kvlens = inProcess;
  const opt = await kvlens('demo', '--imagse', '3');
  assert.equal(opt.code, 2);
  assert.match(opt.err, /unknown option --imagse \(did you mean --images\?\)/);
  const cmd = await kvlens('prob');
  assert.equal(cmd.code, 2);
  assert.match(cmd.err, /unknown command "prob" \(did you mean probe\?\)/);
  assert.match((await kvlens('store', 'inof')).err, /unknown store subcommand "inof" \(did you mean info\?\)/);
  assert.match((await kvlens('probe', 'fewshot', '--store', 's', '--data', 'd')).err, /unknown task "fewshot" \(did you mean fewshot-seg\?\)/);
  const val = await kvlens('extract', '--model', 'm', '--images', 'i', '--out', 'o', '--on-error', 'skp');
  assert.equal(val.code, 2);
  assert.match(val.err, /--on-error: expected stop \| skip, got "skp" \(did you mean skip\?\)/);
  const missing = await kvlens('report', '--out');
  assert.equal(missing.code, 2);
  assert.match(missing.err, /--out expects a value/);
  const num = await kvlens('view', 'x', '--port', 'eighty');
  assert.equal(num.code, 2);
  assert.match(num.err, /--port: expected an integer in 0\.\.65535, got "eighty"/);
});

test('--version, bare kvlens, bad input errors without stack traces', () => {
  const v = kvlens('--version');
  assert.equal(v.code, 0);
  assert.match(v.out, /^kvlens \d+\.\d+\.\d+/);
  const bare = kvlens();
  assert.equal(bare.code, 2);
  assert.match(bare.err, /usage: kvlens <command>/);
  assert.equal(kvlens('--help').code, 0);
  const nodir = kvlens('report', '/nonexistent/run-dir');
  assert.equal(nodir.code, 2);
  assert.ok(noStack(nodir.err), nodir.err);
  assert.match(nodir.err, /\/nonexistent\/run-dir/);
  const noStore = kvlens('store', 'info', '/nonexistent/store');
  assert.equal(noStore.code, 2);
  assert.ok(noStack(noStore.err), noStore.err);
});

test('kvlens view on a port in use: exit 2, the message names --port', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvlens-cli-'));
  const blocker = createServer();
  try {
    writeFixtureStore(join(dir, 'store'), 1);
    await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', () => ok()));
    const port = String((blocker.address() as { port: number }).port);
    const child = spawn(process.execPath, [BIN, 'view', join(dir, 'store'), '--port', port], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += String(d); });
    const code = await new Promise<number | null>((ok) => {
      const t = setTimeout(() => { child.kill(); ok(null); }, 30_000);
      child.on('exit', (c) => { clearTimeout(t); ok(c); });
    });
    assert.equal(code, 2, err);
    assert.match(err, new RegExp(`--port ${port}: address 127\\.0\\.0\\.1:${port} is already in use`));
    assert.ok(noStack(err), err);
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
