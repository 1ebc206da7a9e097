/** Cuts a byte stream into length-prefixed frames (u32 little-endian length, then the bytes). */
import { MAX_FRAME } from './protocol.js';

export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  /** Set once a length over MAX_FRAME arrived: the stream cannot be resynchronised after it. */
  broken: string | null = null;

  /** Bytes received that do not yet make a whole frame. */
  get pending(): number {
    return this.buf.length;
  }

  /** Add bytes; returns the frames now complete (none once broken). */
  push(chunk: Buffer): Buffer[] {
    if (this.broken) return [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames: Buffer[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32LE(0);
      if (len > MAX_FRAME) {
        this.broken = `frame length ${len} is over the limit of ${MAX_FRAME} bytes`;
        this.buf = Buffer.alloc(0);
        break;
      }
      if (this.buf.length < 4 + len) break;
      frames.push(this.buf.subarray(4, 4 + len));
      this.buf = this.buf.subarray(4 + len);
    }
    return frames;
  }
}
