// `kvlens view <store | run-dir> [--port N] [--host 127.0.0.1]`: browse images and layers in a local web page.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { startViewer } from '../../viewer/server.js';
import { KvlensUsageError } from '../../util/errors.js';

const USAGE = `usage: kvlens view <store-dir | run-dir> [--port N] [--host ADDR]
  --port   port to listen on (default 8765; 0 = any free port)
  --host   address to bind (default 127.0.0.1, this machine only)`;

export default async function view(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true, strict: true,
    options: { port: { type: 'string' }, host: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new KvlensUsageError(`expected one store or run directory\n${USAGE}`);
  const port = values.port === undefined ? 8765 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new KvlensUsageError(`--port must be an integer 0..65535, got ${values.port}`);
  const host = values.host ?? '127.0.0.1';
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
    console.error(`warning: binding ${host} exposes the viewer (and the files of the directory) to other machines`);
  }
  const v = await startViewer(resolve(positionals[0]), { port, host, log: (l) => console.error(l) });
  console.log(`kvlens view: serving ${v.source.title} at ${v.url} (Ctrl-C to stop)`);
  await new Promise<void>((done) => {
    const stop = () => void v.close().then(done);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
