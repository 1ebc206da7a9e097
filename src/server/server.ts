/**
 * `tcelab serve`: one modelled machine served to any number of client processes over a UNIX
 * socket. Each connection is one process (see session.ts). A malformed frame is answered with an
 * error and logged; a frame length over the limit cannot be resynchronised, so that connection is
 * answered, logged and closed, and its process released. Nothing a client sends stops the server.
 * Requests are read and answered without Node's stream layer (direct-conn.ts); after an answer
 * the server polls for the next request for a while before it sleeps (poll-window.ts).
 */
import { existsSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { MachineOptions } from '../machine/machine.js';
import { DirectConn } from './direct-conn.js';
import { FrameReader } from './framing.js';
import { ModelHost } from './host.js';
import { AnswerPoller } from './poll-window.js';
import { AnswerWriter, EPROTO } from './protocol.js';
import { Session } from './session.js';

export type LogLine = (line: string) => void;

export class ModelServer {
  readonly host: ModelHost;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private nextConn = 1;
  private path: string | null = null;
  private readonly poll = new AnswerPoller();

  constructor(
    opts: MachineOptions,
    private readonly log: LogLine = (l) => process.stderr.write(`tcelab serve: ${l}\n`),
  ) {
    this.host = new ModelHost(opts);
    this.server = createServer({ pauseOnConnect: true }, (s) => this.connection(s));
  }

  private connection(accepted: Socket): void {
    const id = this.nextConn++;
    const session = new Session(this.host, (l) => this.log(`connection ${id}${session.pid === null ? '' : ` (model pid ${session.pid})`}: ${l}`));
    const out = new AnswerWriter();
    const frames = new FrameReader((bytes, view, start, end) => session.answer(bytes, view, start, end, out));
    const conn = new DirectConn(accepted, (bytes, view, n) => {
      this.poll.arrived();
      // Frames that came together are answered together, in one write.
      frames.push(bytes, view, n);
      if (out.length) {
        conn.send(out.bytes, out.length);
        out.clear();
        this.poll.answered();
      }
      if (frames.broken && !conn.socket.writableEnded) {
        this.log(`connection ${id}: ${frames.broken}; closing it`);
        out.put(-1, EPROTO, Buffer.from(frames.broken));
        conn.end(out.bytes.subarray(0, out.length));
        out.clear();
      }
    });
    const sock = conn.socket;
    this.sockets.add(sock);
    // A client that dies mid-call resets the connection; 'close' releases it like any exit.
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET') this.log(`connection ${id}: ${e.message}`);
    });
    sock.on('close', () => {
      this.sockets.delete(sock);
      if (frames.pending) this.log(`connection ${id}: closed in the middle of a frame (${frames.pending} bytes received)`);
      session.release();
    });
  }

  /** Listen on `path`; a stale socket file nobody serves is replaced, a live one is an error. */
  async listen(path: string): Promise<void> {
    if (existsSync(path)) {
      if (await isServed(path)) throw new Error(`--socket ${path}: a server is already listening there`);
      unlinkSync(path);
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(path, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.path = path;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.path && existsSync(this.path)) unlinkSync(this.path);
  }
}

/** Does a server answer on this socket path? */
export function isServed(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}
