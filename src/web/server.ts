/**
 * The HTTP server of `tcelab view`: the page, its bundle, the JSON state and live updates as
 * server-sent events. Loopback only unless told otherwise; a request whose Host is not the
 * server's own, or whose Origin is not the page's, is refused (403), so other web pages and DNS
 * rebinding cannot read the machine. A page that goes away mid-stream just ends its stream.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StateResponse, TcesResponse } from './protocol.js';
import type { ViewSession } from './session.js';

export interface ViewServerOptions {
  host: string;
  port: number;
}

export interface ViewServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** The page's files, built by `npm run build` (scripts/build-web.mjs) into dist/web. */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};
const ASSET_DIR = new URL('../../web/', import.meta.url);

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const HEARTBEAT_MS = 15_000;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** The Host header values this server answers to. */
function allowedHosts(host: string, port: number): Set<string> | null {
  if (isWildcard(host)) return null;
  const names = isLoopback(host) ? [...LOOPBACK_NAMES, host] : [host.includes(':') ? `[${host}]` : host];
  return new Set(names.map((n) => `${n}:${port}`));
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

/** Why a request is refused, or null. */
export function refusal(req: IncomingMessage, allowed: Set<string> | null): string | null {
  const host = req.headers.host ?? '';
  if (allowed && !allowed.has(host)) return `Host "${host}" is not this server (expected ${[...allowed].join(' or ')})`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`) return `Origin "${origin}" is not this server's (http://${host})`;
  if (req.headers['sec-fetch-site'] === 'cross-site') return 'cross-site request';
  return null;
}

function intParam(u: URL, name: string, min: number, max: number): number {
  const v = u.searchParams.get(name);
  const n = Number(v);
  if (v === null || !Number.isInteger(n) || n < min || n > max)
    throw new RangeError(`${name}: expected an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return n;
}

export function startViewServer(session: ViewSession, opts: ViewServerOptions): Promise<ViewServer> {
  const streams = new Set<ServerResponse>();
  let allowed: Set<string> | null = null;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const why = refusal(req, allowed);
    if (why) return json(res, 403, { error: why });
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: `${req.method}: the view only answers GET` });
    const u = new URL(req.url ?? '/', 'http://view');
    if (u.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    const asset = ASSETS[u.pathname];
    if (asset) {
      let body: Buffer;
      try {
        body = readFileSync(new URL(asset.file, ASSET_DIR));
      } catch {
        return json(res, 500, { error: `dist/web/${asset.file} is missing: run npm run build` });
      }
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
      res.end(body);
      return;
    }
    const last = Math.max(0, session.rec.steps.length - 1);
    try {
      switch (u.pathname) {
        case '/api/timeline':
          return json(res, 200, session.timeline());
        case '/api/diff':
          return json(res, 200, session.diff());
        case '/api/state': {
          const step = intParam(u, 'step', 0, last);
          return json(res, 200, { step, report: session.state(step) } satisfies StateResponse);
        }
        case '/api/table': {
          const t = session.table(intParam(u, 'step', 0, last), intParam(u, 'id', 0, 2 ** 31));
          return typeof t === 'string' ? json(res, 404, { error: t }) : json(res, 200, t);
        }
        case '/api/tces': {
          const id = intParam(u, 'id', 0, 2 ** 31);
          const t = session.tces(intParam(u, 'step', 0, last), id, intParam(u, 'from', 0, 2 ** 40), intParam(u, 'count', 1, 4096));
          return typeof t === 'string' ? json(res, 404, { error: t }) : json(res, 200, { table: id, entries: t } satisfies TcesResponse);
        }
        case '/api/events':
          return stream(res);
        default:
          return json(res, 404, { error: `no ${u.pathname} here` });
      }
    } catch (e) {
      if (e instanceof RangeError) return json(res, 400, { error: e.message });
      throw e;
    }
  };

  /** Server-sent events: "hello" with the steps so far, then one "update" per step a live run takes. */
  const stream = (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    const send = (event: string, data: unknown) => {
      if (!res.writableEnded && !res.destroyed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    send('hello', { steps: session.rec.steps.length, done: session.done });
    streams.add(res);
    const unsubscribe = session.subscribe((u) => send('update', u));
    const beat = setInterval(() => {
      if (!res.writableEnded && !res.destroyed) res.write(': keep-alive\n\n');
    }, HEARTBEAT_MS);
    const end = () => {
      clearInterval(beat);
      unsubscribe();
      streams.delete(res);
    };
    res.on('close', end);
    res.on('error', end);
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) json(res, 500, { error: (e as Error).message });
      else res.destroy();
    }
  });
  // A client that vanishes mid-request must not take the server down.
  server.on('clientError', (_e, socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      allowed = allowedHosts(opts.host, port);
      const shown = isWildcard(opts.host) ? 'localhost' : opts.host.includes(':') ? `[${opts.host}]` : opts.host;
      resolve({
        url: `http://${shown}:${port}/`,
        server,
        close: () =>
          new Promise<void>((done) => {
            for (const s of streams) s.end();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
