/**
 * One client connection: the model process behind it and its requests, carried out through the
 * machine's system-call surface. A connection that ends without OP_EXIT is a process that died:
 * it is released as an exiting process is.
 */
import { errno } from '../base/errno.js';
import { syncMappings } from './mm-sync.js';
import type { ModelHost } from './host.js';
import { procText } from './proc-text.js';
import { type AnswerWriter, decodeFrame, EPROTO, ProtocolError, type Request } from './protocol.js';

interface Answer {
  ret: number;
  errno: number;
  body?: Uint8Array;
  /** The kernel killed the task inside the call: answered as errno -signal (the shim raises it). */
  signal?: number;
}

export class Session {
  /** The model pid, once HELLO has named it. */
  pid: number | null = null;
  private exited = false;

  constructor(
    private readonly host: ModelHost,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * One request frame in (`bytes[start, end)`, `view` over the same bytes), its answer frame
   * appended to `out`; a bad frame is answered with EPROTO and logged.
   */
  answer(bytes: Uint8Array, view: DataView, start: number, end: number, out: AnswerWriter): void {
    try {
      const a = this.handle(decodeFrame(bytes, view, start, end));
      out.put(a.ret, a.signal ? -a.signal : a.errno, a.body);
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.log(`bad request: ${e.message}`);
        out.put(-1, EPROTO, Buffer.from(e.message));
        return;
      }
      // A bug in the model: say so loudly, answer EIO and keep serving the other clients.
      const msg = `internal error: ${(e as Error).stack ?? e}`;
      this.log(msg);
      out.put(-1, errno.EIO, Buffer.from(msg));
    }
  }

  /** The connection ended: a process that did not say it exits has died. */
  release(): void {
    if (this.pid !== null && !this.exited) {
      this.host.sys.exit(this.pid);
      this.host.releaseUnattachedChildren(this.pid);
    }
    this.exited = true;
  }

  private handle(req: Request): Answer {
    if (req.op === 'inspect') return { ret: 0, errno: 0, body: Buffer.from(JSON.stringify(this.host.view())) };
    if (req.op === 'hello') return this.hello(req.realPid, req.attach, req.comm);
    const pid = this.pid;
    if (pid === null) throw new ProtocolError(`${req.op}: the connection has not sent HELLO yet`);
    const sys = this.host.sys;
    switch (req.op) {
      case 'open':
        return sys.open(pid, req.path);
      case 'close':
        return sys.close(pid, req.fd);
      case 'dup':
        return sys.dup(pid, req.fd);
      case 'ioctl': {
        // The user memory behind a pointer in the struct is the program's: place it, then send it back.
        if (req.user) sys.processes.get(pid)?.mm.user.place(req.user.addr, req.user.bytes);
        const r = sys.ioctl(pid, req.fd, req.request, req.arg);
        if (typeof req.arg === 'bigint') return r;
        return { ret: r.ret, errno: r.errno, signal: r.signal, body: req.user ? Buffer.concat([req.arg, req.user.bytes]) : req.arg };
      }
      case 'read': {
        const r = sys.read(pid, req.fd);
        if (r.ret < 0) return r;
        const body = Buffer.from(r.text ?? '');
        return { ret: body.length, errno: 0, body };
      }
      case 'lseek':
        return sys.lseek(pid, req.fd, req.offset, req.whence);
      case 'memory': {
        const p = sys.processes.get(pid);
        if (p && !p.exited) syncMappings(p.mm, req.start, req.end, req.segments);
        return { ret: 0, errno: 0 };
      }
      case 'procText':
        return { ret: 0, errno: 0, body: Buffer.from(procText(this.host.machine, pid, req.file)) };
      case 'setrlimitMemlock':
        return sys.setrlimitMemlock(pid, req.bytes);
      case 'setuid':
        return sys.setuid(pid, req.uid);
      case 'fork':
        return this.host.fork(pid);
      case 'reap':
        return this.host.reap(pid, req.pid);
      case 'exit':
        sys.exit(pid);
        this.exited = true;
        return { ret: 0, errno: 0 };
    }
  }

  private hello(realPid: number, attach: number, comm: string): Answer {
    if (this.pid !== null) throw new ProtocolError(`HELLO: this connection already is model process ${this.pid}`);
    if (attach >= 0) {
      const r = this.host.attach(attach, realPid);
      if (typeof r === 'string') throw new ProtocolError(`HELLO: ${r}`);
      this.pid = r;
    } else {
      this.pid = this.host.spawn(comm || `pid${realPid}`, realPid);
    }
    const body = Buffer.alloc(8);
    body.writeUInt32LE(this.host.machine.mem.pageSize, 0);
    body.writeUInt32LE(this.host.machine.hugePageShift, 4);
    return { ret: this.pid, errno: 0, body };
  }
}
