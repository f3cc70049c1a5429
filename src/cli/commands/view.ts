// `kvlens view <store | run-dir> [--port N] [--host 127.0.0.1]`: browse images and layers in a local web page.
import { intOption, parseCommand } from '../args.js';
import { resolve } from 'node:path';
import { startViewer } from '../../viewer/server.js';
import { KvlensUsageError } from '../../util/errors.js';

const USAGE = `usage: kvlens view <store-dir | run-dir> [--port N] [--host ADDR]
  --port   port to listen on (default 8765; 0 = any free port)
  --host   address to bind (default 127.0.0.1, this machine only)`;

export default async function view(args: string[]): Promise<number> {
  const parsed = parseCommand({
    name: 'view', usage: USAGE, positionals: { min: 1, max: 1, what: 'store or run directory' },
    options: { port: { type: 'string' }, host: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  }, args);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const port = intOption(values.port, 'port', USAGE, { min: 0, max: 65535 }) ?? 8765;
  const host = values.host ?? '127.0.0.1';
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
    console.error(`warning: binding ${host} exposes the viewer (and the files of the directory) to other machines`);
  }
  const v = await startViewer(resolve(positionals[0]), { port, host, log: (l) => console.error(l) }).catch((e: unknown) => {
    const code = (e as { code?: string }).code;
    if (code === 'EADDRINUSE') throw new KvlensUsageError(`--port ${port}: address ${host}:${port} is already in use; pick another port with --port N (or --port 0 for any free port)`);
    if (code === 'EACCES') throw new KvlensUsageError(`--port ${port}: not allowed to listen on ${host}:${port} (ports below 1024 need privileges); pick another with --port N`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new KvlensUsageError(`--host ${host}: not an address of this machine`);
    throw e;
  });
  console.log(`kvlens view: serving ${v.source.title} at ${v.url} (Ctrl-C to stop)`);
  await new Promise<void>((done) => {
    const stop = () => void v.close().then(done);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
