// Set-up shared by the tests that run `kvlens extract` as a process (SIGKILL + resume, SIGTERM + resume on another
// host) and the keys end-to-end test: a tiny LLaVA-OneVision checkpoint with n images, and the CLI in a child process
// that is sent a signal once it has reported k images.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyModel, writeImages } from '../extract/helpers.js';
import { REPO_ROOT } from './fixtures.js';

const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');
const CLI_CHILD = join(dirname(here), '..', 'extract', fromSource ? 'cli-child.ts' : 'cli-child.js');

/** A generated tiny LLaVA-OneVision checkpoint and `n` images of varied sizes in a fresh temp directory. */
export async function tinyModelWithImages(n: number, tag: string): Promise<{ model: string; images: string }> {
  const model = tinyModel();
  const images = join(mkdtempSync(join(tmpdir(), `kvlens-${tag}-`)), 'images');
  await writeImages(images, n);
  return { model, images };
}

export interface ExtractRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** `kvlens extract <args>` in a child; with `signal`, sent once (a second SIGTERM exits at once) after `after` images. */
export function runExtractCli(args: readonly string[], opts: { signal?: NodeJS.Signals; after?: number; env?: Record<string, string> } = {}): Promise<ExtractRun> {
  const child = spawn(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), CLI_CHILD, 'extract', ...args, '--progress-interval', '0'],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    const done = (stderr.match(/^extract \d+\/\d+/gm) ?? []).length;
    if (opts.signal && !sent && done >= (opts.after ?? 1) && child.exitCode === null) {
      sent = true;
      child.kill(opts.signal);
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}
