/** A client that speaks the socket protocol by hand, for tests: frames out, answers back. */
import { createConnection, type Socket } from 'node:net';
import { Op } from '../../src/server/protocol.js';

export interface RawAnswer {
  ret: number;
  errno: number;
  body: Buffer;
}

export class RawClient {
  private buf = Buffer.alloc(0);
  private waiting: ((a: RawAnswer) => void)[] = [];
  closed: Promise<void>;

  private constructor(readonly sock: Socket) {
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUInt32LE(0)) {
        const len = this.buf.readUInt32LE(0);
        const f = this.buf.subarray(4, 4 + len);
        this.buf = this.buf.subarray(4 + len);
        this.waiting.shift()?.({ ret: f.readInt32LE(0), errno: f.readInt32LE(4), body: f.subarray(8) });
      }
    });
    this.closed = new Promise((resolve) => sock.on('close', () => resolve()));
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Send bytes as they are (a frame or a piece of one). */
  sendRaw(b: Buffer): void {
    this.sock.write(b);
  }

  /** Send one frame with this payload and wait for its answer. */
  request(payload: Buffer): Promise<RawAnswer> {
    const p = new Promise<RawAnswer>((resolve) => this.waiting.push(resolve));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(payload.length);
    this.sock.write(Buffer.concat([len, payload]));
    return p;
  }

  hello(comm: string): Promise<RawAnswer> {
    const b = Buffer.alloc(9);
    b.writeUInt8(Op.HELLO, 0);
    b.writeUInt32LE(process.pid, 1);
    b.writeInt32LE(-1, 5);
    return this.request(Buffer.concat([b, Buffer.from(comm)]));
  }

  open(path: string): Promise<RawAnswer> {
    return this.request(Buffer.concat([Buffer.from([Op.OPEN]), Buffer.from(path)]));
  }

  /** An ioctl with an integer argument. */
  ioctlValue(fd: number, request: number, value: bigint): Promise<RawAnswer> {
    const b = Buffer.alloc(18);
    b.writeUInt8(Op.IOCTL, 0);
    b.writeInt32LE(fd, 1);
    b.writeUInt32LE(request, 5);
    b.writeUInt8(0, 9);
    b.writeBigUInt64LE(value, 10);
    return this.request(b);
  }

  async inspect<T>(): Promise<T> {
    return JSON.parse((await this.request(Buffer.from([Op.INSPECT]))).body.toString()) as T;
  }

  close(): Promise<void> {
    this.sock.end();
    return this.closed;
  }
}
