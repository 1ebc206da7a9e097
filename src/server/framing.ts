/**
 * Cuts a byte stream into length-prefixed frames (u32 little-endian length, then the bytes).
 * Whole frames are handed over where they lie in the bytes just read, with no copy; only the
 * unfinished frame at the end of a read is copied, and completed from the next ones.
 */
import { MAX_FRAME } from './protocol.js';

/** Capacity kept for carried-over frames; the buffer of a larger one is dropped once it is handled. */
const KEPT_PART_BYTES = 64 * 1024;

/** A complete frame at `bytes[start, end)`; `view` is a DataView over the same bytes. Valid only during the call. */
export type FrameHandler = (bytes: Uint8Array, view: DataView, start: number, end: number) => void;

export class FrameReader {
  /** The unfinished frame (length prefix included) carried over from earlier reads. */
  private part: Uint8Array = new Uint8Array(0);
  private partView: DataView = new DataView(this.part.buffer);
  private partLen = 0;
  /** Set once a length over MAX_FRAME arrived: the stream cannot be resynchronised after it. */
  broken: string | null = null;

  constructor(private readonly onFrame: FrameHandler) {}

  /** Bytes received that do not yet make a whole frame. */
  get pending(): number {
    return this.partLen;
  }

  /** `bytes[0, n)` arrived (`view` over the same bytes): hands every frame now complete to the handler, in order. */
  push(bytes: Uint8Array, view: DataView, n: number): void {
    let off = this.partLen ? this.finishPart(bytes, n) : 0;
    while (!this.broken && n - off >= 4) {
      const len = this.frameLength(view.getUint32(off, true));
      if (len < 0 || n - off < 4 + len) break;
      this.onFrame(bytes, view, off + 4, off + 4 + len);
      off += 4 + len;
    }
    if (!this.broken && off < n) this.keep(bytes.subarray(off, n));
  }

  /** The length of a frame, or -1 (and broken) when it is over the limit. */
  private frameLength(len: number): number {
    if (len <= MAX_FRAME) return len;
    this.broken = `frame length ${len} is over the limit of ${MAX_FRAME} bytes`;
    this.partLen = 0;
    return -1;
  }

  /** Completes the carried-over frame from `bytes[0, n)`; returns how many bytes it took. */
  private finishPart(bytes: Uint8Array, n: number): number {
    let off = 0;
    if (this.partLen < 4) {
      off = Math.min(4 - this.partLen, n);
      this.keep(bytes.subarray(0, off));
      if (this.partLen < 4) return off;
    }
    const len = this.frameLength(this.partView.getUint32(0, true));
    if (len < 0) return n;
    const take = Math.min(4 + len - this.partLen, n - off);
    this.keep(bytes.subarray(off, off + take));
    off += take;
    if (this.partLen < 4 + len) return off;
    this.partLen = 0;
    this.onFrame(this.part, this.partView, 4, 4 + len);
    if (this.part.length > KEPT_PART_BYTES) this.setPart(new Uint8Array(0));
    return off;
  }

  /** Appends to the carried-over frame. */
  private keep(b: Uint8Array): void {
    const need = this.partLen + b.length;
    if (need > this.part.length) {
      const grown = new Uint8Array(Math.max(need, 2 * this.part.length, 64));
      grown.set(this.part.subarray(0, this.partLen));
      this.setPart(grown);
    }
    this.part.set(b, this.partLen);
    this.partLen = need;
  }

  private setPart(b: Uint8Array): void {
    this.part = b;
    this.partView = new DataView(b.buffer);
  }
}
