/**
 * An accepted connection served without Node's stream layer on the way of a request and its
 * answer. Reads land in one buffer the connection keeps (net.Socket's `onread` mode: no Buffer
 * per read, no 'data' event, no Readable bookkeeping); an answer goes out with one write(2) on
 * the socket's descriptor. Only what the socket cannot take at once goes through the stream,
 * which keeps it in order and sends it when the peer reads; while the stream holds bytes, later
 * answers queue behind them.
 *
 * net.Server hands accepted sockets over in stream mode only, so the server listens with
 * `pauseOnConnect` (nothing read yet) and the accepted socket's handle is moved into a socket
 * made with `onread`. That uses the handle behind the accepted socket (`_handle`, and its `fd`),
 * which Node does not document: where it is not there (another Node), the connection keeps the
 * accepted socket and its stream, with the same reads and answers, only slower.
 */
import { writeSync } from 'node:fs';
import { Socket } from 'node:net';

/** Bytes one read can bring. */
export const READ_BYTES = 64 * 1024;

/** `bytes[0, n)` just arrived; `view` is a DataView over the same bytes. Valid only during the call. */
export type BytesHandler = (bytes: Uint8Array, view: DataView, n: number) => void;

/** What this file needs of the handle behind an accepted socket. */
interface StreamHandle {
  fd: number;
  useUserBuffer(buf: Uint8Array): void;
}

/** The handle behind an accepted socket when it has what a direct connection needs, else null. */
export function directHandle(accepted: Socket): StreamHandle | null {
  const handle = (accepted as unknown as { _handle: StreamHandle | null })._handle;
  return handle && typeof handle.fd === 'number' && handle.fd >= 0 && typeof handle.useUserBuffer === 'function' ? handle : null;
}

export class DirectConn {
  /** The socket that now owns the connection: its 'error', 'end' and 'close' events are the connection's. */
  readonly socket: Socket;
  /** The descriptor answers are written to directly; -1 when the stream carries everything. */
  private readonly fd: number;
  private readonly bytes = new Uint8Array(READ_BYTES);
  private readonly view = new DataView(this.bytes.buffer);

  /** `accepted` comes from a server made with `pauseOnConnect: true`; `handle` null keeps its stream. */
  constructor(accepted: Socket, onBytes: BytesHandler, handle = directHandle(accepted)) {
    if (!handle) {
      // The stream's chunks are copied into the connection's buffer, so a handler sees the same thing either way.
      this.fd = -1;
      this.socket = accepted;
      accepted.on('data', (chunk: Buffer) => {
        for (let off = 0; off < chunk.length; off += READ_BYTES) {
          const n = Math.min(READ_BYTES, chunk.length - off);
          this.bytes.set(chunk.subarray(off, off + n));
          onBytes(this.bytes, this.view, n);
        }
      });
      accepted.resume();
      return;
    }
    this.fd = handle.fd;
    // The accepted socket gives up its handle and is destroyed empty (the server stops counting it).
    (accepted as unknown as { _handle: StreamHandle | null })._handle = null;
    accepted.destroy();
    const opts = {
      handle,
      readable: true,
      writable: true,
      onread: {
        buffer: this.bytes,
        callback: (n: number) => {
          onBytes(this.bytes, this.view, n);
          return true;
        },
      },
    };
    this.socket = new Socket(opts as ConstructorParameters<typeof Socket>[0]);
  }

  /** Sends `bytes[0, n)` (copied where it has to wait: the caller may reuse `bytes` at once). */
  send(bytes: Uint8Array, n: number): void {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return;
    let done = 0;
    if (this.fd >= 0 && s.writableLength === 0) {
      try {
        done = writeSync(this.fd, bytes, 0, n);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // The peer is gone: its end reaches the read side, which releases the connection.
        if (code === 'EPIPE' || code === 'ECONNRESET') return;
        if (code !== 'EAGAIN') {
          s.destroy(e as Error);
          return;
        }
      }
    }
    if (done < n) s.write(Buffer.from(bytes.subarray(done, n)));
  }

  /** Sends `bytes` after anything still queued, then closes the connection. */
  end(bytes: Uint8Array): void {
    if (!this.socket.writableEnded) this.socket.end(Buffer.from(bytes));
  }
}
