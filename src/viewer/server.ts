// `kvlens view`: a local web app over node:http. JSON endpoints compute what the page draws (PCA colours, nearest
// neighbours, masks, variance maps, attention) lazily per request; /files/ serves files confined to the given directory.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile, realpath, stat } from 'node:fs/promises';
import { createReadStream, existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cosineMatch, LruCache, pcaRgb } from './features.js';
import { PHOTO_MAX_SIDE, PhotoCache } from './photo.js';
import { resolveInside } from './paths.js';
import { ViewerSource } from './source.js';
import { KvlensInputError, KvlensUsageError, ownValue } from '../util/errors.js';

export interface ViewerOptions {
  host?: string;
  port?: number;
  /** PCA results kept in memory (per image + tap). */
  cacheSize?: number;
  log?: (line: string) => void;
  /** Heavy requests (files, PCA, matches) served at once; more wait in a queue of 4x this, beyond which 503. Default 4. */
  maxHeavy?: number;
}

export interface RunningViewer {
  server: Server;
  url: string;
  source: ViewerSource;
  close(): Promise<void>;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.json': 'application/json',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.svg': 'image/svg+xml', '.txt': 'text/plain; charset=utf-8',
};
const ASSETS = new Set(['index.html', 'app.js', 'style.css']);
/** Endpoints that read feature grids from the store (megabytes each): counted by the heavy-request gate. */
const HEAVY_API = new Set(['/api/pca', '/api/match']);

/** The page's static files: src/viewer/public, found from this module whether it runs from src/ (tsx) or dist/src/. */
function publicDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    for (const cand of [join(dir, 'public'), join(dir, 'src', 'viewer', 'public')]) if (existsSync(join(cand, 'app.js'))) return cand;
    dir = dirname(dir);
  }
  throw new KvlensUsageError('viewer assets (src/viewer/public) not found next to the installed package');
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: string | Buffer, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

const json = (res: ServerResponse, v: unknown) => send(res, 200, JSON.stringify(v));

function intParam(q: URLSearchParams, name: string, lo: number, hi: number, dflt?: number): number {
  const raw = q.get(name);
  if (raw === null) {
    if (dflt !== undefined) return dflt;
    throw new HttpError(400, `missing query parameter "${name}"`);
  }
  const v = Number(raw);
  if (!Number.isInteger(v) || v < lo || v > hi) throw new HttpError(400, `"${name}" must be an integer in ${lo}..${hi}, got ${raw}`);
  return v;
}

function strParam(q: URLSearchParams, name: string): string {
  const v = q.get(name);
  if (!v) throw new HttpError(400, `missing query parameter "${name}"`);
  return v;
}

function round(x: number, d = 4): number {
  return Math.round(x * 10 ** d) / 10 ** d;
}

/**
 * The Host header must name the address the viewer is bound to (or localhost / an IP literal): a page on another
 * domain that rebinds its DNS name to 127.0.0.1 sends its own name as Host and is refused, so it cannot read the
 * served directory.
 */
export function hostAllowed(hostHeader: string | undefined, boundHost: string): boolean {
  if (!hostHeader) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader.trim().toLowerCase());
  if (!m) return false;
  const name = m[1].replace(/^\[|\]$/g, '');
  if (name === boundHost.toLowerCase() || name === 'localhost' || name.endsWith('.localhost')) return true;
  return isIP(name) !== 0;
}

/** Counts heavy requests in flight; the rest queue (bounded) so 20 concurrent large reads cannot pile up in memory. */
export class HeavyGate {
  private active = 0;
  private readonly queue: Array<() => void> = [];
  constructor(private readonly max: number) {}
  async enter(): Promise<() => void> {
    if (this.active >= this.max) {
      if (this.queue.length >= 4 * this.max) throw new HttpError(503, 'busy: too many heavy requests at once, retry');
      await new Promise<void>((ok) => this.queue.push(ok));
    }
    this.active++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.active--;
      this.queue.shift()?.();
    };
  }
}

/** Streams a file (whole, or one `bytes=a-b` range) instead of reading it into memory. */
async function sendFile(req: IncomingMessage, res: ServerResponse, path: string, release: () => void): Promise<void> {
  const { size } = await stat(path);
  const type = MIME[extname(path).toLowerCase()] ?? 'application/octet-stream';
  let start = 0, end = size - 1, status = 200;
  const range = req.headers.range;
  if (range) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    if (!m || (m[1] === '' && m[2] === '')) throw new HttpError(416, `unsupported Range "${range}"`);
    if (m[1] === '') { start = Math.max(0, size - Number(m[2])); } else { start = Number(m[1]); if (m[2] !== '') end = Math.min(end, Number(m[2])); }
    if (start > end || start >= size) {
      res.writeHead(416, { 'content-range': `bytes */${size}` });
      res.end();
      release();
      return;
    }
    status = 206;
  }
  const headers: Record<string, string | number> = {
    'content-type': type, 'content-length': size === 0 ? 0 : end - start + 1, 'accept-ranges': 'bytes', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff',
  };
  if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${size}`;
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || size === 0) { res.end(); release(); return; }
  const stream = createReadStream(path, { start, end });
  res.on('close', () => { stream.destroy(); release(); });
  stream.on('error', () => { res.destroy(); release(); });
  stream.pipe(res);
}

export async function startViewer(target: string, opts: ViewerOptions = {}): Promise<RunningViewer> {
  const realRoot = await realpath(target).catch(() => {
    throw new KvlensInputError('directory not found', target);
  });
  const source = await ViewerSource.open(realRoot);
  const assets = publicDir();
  const pcaCache = new LruCache<{ rows: number; cols: number; rgb: string }>(opts.cacheSize ?? 256);
  const photos = new PhotoCache();
  const log = opts.log ?? (() => undefined);

  const tapFor = (q: URLSearchParams) => {
    const fam = strParam(q, 'tap');
    const famInfo = source.tapFamilies().find((f) => f.name === fam);
    if (!famInfo) throw new HttpError(404, `tap family "${fam}" is not in the store`);
    const layer = intParam(q, 'layer', 0, 10_000);
    if (!famInfo.layers.includes(layer)) throw new HttpError(404, `layer ${layer} of ${fam} is not stored`);
    return `lm.${layer}.${fam}`;
  };
  const imageFor = (q: URLSearchParams, name = 'image') => {
    const id = strParam(q, name);
    if (!source.store?.has(id)) throw new HttpError(404, `image "${id}" is not in the store`);
    return id;
  };
  /** Optional store view ("base", "highres", ...); the tap's first view when absent. */
  const viewFor = (q: URLSearchParams) => {
    const v = q.get('view');
    if (v && !source.store?.views.includes(v)) throw new HttpError(404, `view "${v}" is not in the store (stored: ${source.store?.views.join(', ')})`);
    return v ?? undefined;
  };

  const api: Record<string, (q: URLSearchParams) => Promise<unknown>> = {
    '/api/info': async () => {
      const kv = await source.loadKeyVariance();
      return {
        mode: source.mode, title: source.title, images: source.imageIds().length, taps: source.tapFamilies(), hasStore: !!source.store,
        keyVariance: kv ? { layers: kv.layers.map((l) => l.layer), threshold: kv.threshold, grid: kv.grid, tap: kv.tap } : null,
        views: source.store ? source.store.views.filter((v) => v !== 'siglip') : [], runFiles: await source.runFiles(),
      };
    },
    '/api/images': async (q) => {
      const ids = source.imageIds();
      const offset = intParam(q, 'offset', 0, Number.MAX_SAFE_INTEGER, 0);
      const limit = intParam(q, 'limit', 1, 500, 50);
      const items = [];
      for (const id of ids.slice(offset, offset + limit)) {
        const img = source.store!.image(id);
        items.push({ id, grid: img.views.base ?? Object.values(img.views)[0], views: img.views, size: img.originalSize });
      }
      return { total: ids.length, offset, items };
    },
    '/api/pca': async (q) => {
      const image = imageFor(q);
      const tap = tapFor(q);
      const view = viewFor(q);
      const key = `${image}\u0000${tap}\u0000${view ?? ''}`;
      let hit = pcaCache.get(key);
      if (!hit) {
        const g = source.grid(image, tap, view); // [rows, cols, D]
        hit = { rows: g.rows, cols: g.cols, rgb: Buffer.from(pcaRgb(g.data, g.rows * g.cols, g.dim)).toString('base64') };
        pcaCache.set(key, hit);
      }
      return { image, tap, view: view ?? null, ...hit };
    },
    '/api/match': async (q) => {
      const a = imageFor(q, 'a');
      const b = imageFor(q, 'b');
      const tap = tapFor(q);
      const view = viewFor(q);
      const ga = source.grid(a, tap, view);
      const token = intParam(q, 'token', 0, ga.rows * ga.cols - 1);
      const gb = source.grid(b, tap, view);
      const { sims, best } = cosineMatch(ga.data, token, gb.data, ga.dim);
      return { a, b, tap, token, aRows: ga.rows, aCols: ga.cols, rows: gb.rows, cols: gb.cols, best, bestRow: Math.floor(best / gb.cols), bestCol: best % gb.cols,
        score: round(sims[best]), sims: Array.from(sims, (s) => round(s)) };
    },
    '/api/mask': async (q) => {
      const m = await source.mask(strParam(q, 'image'));
      const layer = String(intParam(q, 'layer', 0, 10_000));
      if (!m || !m.layers[layer]) throw new HttpError(404, 'no probe mask for this image and layer');
      return { rows: m.grid.rows, cols: m.grid.cols, task: m.task, truth: m.truth ?? null, pred: m.layers[layer] };
    },
    '/api/keyvar': async (q) => {
      const kv = await source.loadKeyVariance();
      if (!kv) throw new HttpError(404, 'this directory has no results/key_variance.json');
      const layer = intParam(q, 'layer', 0, 10_000);
      const l = kv.layers.find((x) => x.layer === layer);
      if (!l) throw new HttpError(404, `no key variance for layer ${layer}`);
      return { rows: kv.grid.rows, cols: kv.grid.cols, variance: l.variance, threshold: kv.threshold.value, inputAgnostic: l.inputAgnostic };
    },
    '/api/attention': async (q) => {
      const a = await source.attention(strParam(q, 'image'));
      const layer = String(intParam(q, 'layer', 0, 10_000));
      if (!a || !a.layers[layer]) throw new HttpError(404, 'no stored attention for this image and layer');
      const token = intParam(q, 'token', 0, a.tokens.length - 1, a.tokens.length - 1);
      return { rows: a.grid.rows, cols: a.grid.cols, tokens: a.tokens, token, values: a.layers[layer][token] };
    },
  };

  // Binary routes: the photo under the overlays (and the image list's thumbnails), decoded as the extractor does.
  const binary: Record<string, (q: URLSearchParams) => Promise<{ body: Buffer; type: string }>> = {
    '/api/photo': async (q) => {
      const id = imageFor(q);
      const size = intParam(q, 'size', 16, PHOTO_MAX_SIDE, 384);
      const src = source.store!.image(id).source;
      const p = await photos.get(src, size, [source.root, process.cwd()]).catch((e: unknown) => {
        throw new HttpError(404, `the source image of "${id}" cannot be read (${(e as Error).message})`);
      });
      return { body: p.jpeg, type: 'image/jpeg' };
    },
  };

  const host = opts.host ?? '127.0.0.1';
  const heavy = new HeavyGate(opts.maxHeavy ?? 4);
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'only GET');
    const raw = req.url ?? '/';
    const qi = raw.indexOf('?');
    const rawPath = qi < 0 ? raw : raw.slice(0, qi);
    const query = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
    if (!hostAllowed(req.headers.host, host)) throw new HttpError(421, `Host "${req.headers.host ?? ''}" is not this viewer's address`);
    if (rawPath.startsWith('/files/')) {
      const r = await resolveInside(realRoot, rawPath.slice('/files/'.length));
      if (!r.ok) throw new HttpError(r.status, r.reason);
      const release = await heavy.enter();
      try {
        return await sendFile(req, res, r.path, release);
      } catch (e) {
        release();
        throw e;
      }
    }
    const endpoint = ownValue(api, rawPath);
    if (endpoint) {
      if (!HEAVY_API.has(rawPath)) return json(res, await endpoint(query));
      const release = await heavy.enter();
      try {
        return json(res, await endpoint(query));
      } finally {
        release();
      }
    }
    if (binary[rawPath]) {
      const r = await binary[rawPath](query);
      return send(res, 200, r.body, r.type);
    }
    const asset = rawPath === '/' ? 'index.html' : rawPath.slice(1);
    if (ASSETS.has(asset)) return send(res, 200, await readFile(join(assets, asset)), MIME[extname(asset)]);
    throw new HttpError(404, 'not found');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : e instanceof KvlensInputError || e instanceof KvlensUsageError ? 400 : 500;
      if (status === 500) log(`viewer: ${req.url}: ${(e as Error).stack ?? e}`);
      if (!res.headersSent) send(res, status, JSON.stringify({ error: (e as Error).message }));
      else res.end();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, host, () => ok());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port ?? 0;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  return {
    server, url, source,
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => {
        source.close();
        ok();
      });
    }),
  };
}
