/**
 * The shim's socket protocol (docs/socket-protocol.md): one request frame, one answer frame.
 * A frame is a u32 length (little-endian) and that many bytes. A request starts with its op byte;
 * an answer is i32 ret, i32 errno and op-specific bytes. Decoding checks every field against the
 * frame and names the field and the limit it broke.
 */
import type { MappingKind } from '../kernel/process.js';
import type { IoctlArg } from '../kernel/uaccess.js';

/** Largest frame either side sends. */
export const MAX_FRAME = 1 << 20;
/** Largest ioctl argument, path or name carried in a request. */
export const MAX_BYTES_FIELD = 64 * 1024;
/** errno of an answer to a request the server could not decode (EPROTO); the body says why. */
export const EPROTO = 71;

export const Op = {
  HELLO: 1,
  OPEN: 2,
  CLOSE: 3,
  DUP: 4,
  IOCTL: 5,
  READ: 6,
  LSEEK: 7,
  MEMORY: 8,
  PROC_TEXT: 9,
  SETRLIMIT_MEMLOCK: 10,
  SETUID: 11,
  FORK: 12,
  EXIT: 13,
  REAP: 14,
  INSPECT: 15,
} as const;

/** Op number → name, for decoding and error messages. */
const OP_NAMES: (string | undefined)[] = [];
for (const [name, v] of Object.entries(Op)) OP_NAMES[v] = name;

export const PROC_FILES = ['cpuinfo', 'meminfo', 'smaps_rollup', 'status'] as const;
export type ProcFile = (typeof PROC_FILES)[number];

const SEGMENT_KINDS: MappingKind[] = ['anon', 'readonly', 'hugetlb', 'thp'];
/** Bytes of one OP_MEMORY segment: u64 start, u64 end, u8 kind, u8 huge page shift. */
const SEGMENT_BYTES = 18;

export interface Segment {
  start: bigint;
  end: bigint;
  kind: MappingKind;
  hugePageShift?: number;
}

export type Request =
  | { op: 'hello'; realPid: number; attach: number; comm: string }
  | { op: 'open'; path: string }
  | { op: 'close' | 'dup'; fd: number }
  | { op: 'ioctl'; fd: number; request: number; arg: IoctlArg; user?: { addr: bigint; bytes: Uint8Array } }
  | { op: 'read'; fd: number; count: number }
  | { op: 'lseek'; fd: number; offset: bigint; whence: number }
  | { op: 'memory'; start: bigint; end: bigint; segments: Segment[] }
  | { op: 'procText'; file: ProcFile }
  | { op: 'setrlimitMemlock'; bytes: bigint }
  | { op: 'setuid'; uid: number }
  | { op: 'reap'; pid: number }
  | { op: 'fork' | 'exit' | 'inspect' };

export class ProtocolError extends Error {}

/**
 * Reads fields off a frame in place: `bytes[start, end)` holds the frame after its length, `view`
 * is a DataView over all of `bytes` (the connection keeps one per buffer, so a frame costs no
 * view of its own). Offsets in messages count from after the op byte. Every shortfall names the
 * field.
 */
class FieldReader {
  private off: number;
  private readonly base: number;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly view: DataView,
    start: number,
    private readonly limit: number,
    private readonly what: string,
  ) {
    this.base = start + 1;
    this.off = this.base;
  }

  private need(n: number, field: string): void {
    if (this.off + n > this.limit) {
      throw new ProtocolError(`${this.what}: field ${field} needs ${n} bytes at offset ${this.off - this.base}, the frame has ${this.limit - this.base}`);
    }
  }
  u8(field: string): number {
    this.need(1, field);
    return this.bytes[this.off++]!;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.off, true);
    this.off += 4;
    return v;
  }
  i32(field: string): number {
    this.need(4, field);
    const v = this.view.getInt32(this.off, true);
    this.off += 4;
    return v;
  }
  u64(field: string): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.off, true);
    this.off += 8;
    return v;
  }
  i64(field: string): bigint {
    this.need(8, field);
    const v = this.view.getBigInt64(this.off, true);
    this.off += 8;
    return v;
  }
  /** A copy of the next `n` bytes: the frame's buffer is reused for the next read. */
  copy(field: string, n: number): Uint8Array {
    this.need(n, field);
    const v = Uint8Array.prototype.slice.call(this.bytes, this.off, this.off + n);
    this.off += n;
    return v;
  }
  /** A copy of the rest of the frame, at most `max` bytes. */
  copyRest(field: string, max: number): Uint8Array {
    const n = this.limit - this.off;
    if (n > max) throw new ProtocolError(`${this.what}: field ${field} is ${n} bytes, the limit is ${max}`);
    return this.copy(field, n);
  }
  /** The rest of the frame as text, at most `max` bytes. */
  text(field: string, max: number): string {
    const s = Buffer.from(this.copyRest(field, max)).toString('utf8');
    if (s.includes('\0')) throw new ProtocolError(`${this.what}: ${field}: contains a NUL byte`);
    return s;
  }
  end(): void {
    if (this.off !== this.limit) throw new ProtocolError(`${this.what}: ${this.limit - this.off} bytes after the last field`);
  }
}

function decodeSegments(r: FieldReader, start: bigint, end: bigint): Segment[] {
  const n = r.u32('count');
  const max = Math.floor((MAX_FRAME - 21) / SEGMENT_BYTES);
  if (n > max) throw new ProtocolError(`MEMORY: field count is ${n}, the limit is ${max}`);
  const segs: Segment[] = [];
  for (let i = 0; i < n; i++) {
    const f = `segments[${i}]`;
    const s = r.u64(`${f}.start`);
    const e = r.u64(`${f}.end`);
    const k = r.u8(`${f}.kind`);
    const shift = r.u8(`${f}.huge_shift`);
    if (s >= e) throw new ProtocolError(`MEMORY: ${f}: start 0x${s.toString(16)} is not below end 0x${e.toString(16)}`);
    if (s < start || e > end)
      throw new ProtocolError(`MEMORY: ${f}: 0x${s.toString(16)}..0x${e.toString(16)} is outside the range 0x${start.toString(16)}..0x${end.toString(16)}`);
    const kind = SEGMENT_KINDS[k];
    if (!kind) throw new ProtocolError(`MEMORY: ${f}.kind is ${k}, expected 0 to ${SEGMENT_KINDS.length - 1}`);
    if (kind === 'hugetlb' && (shift < 12 || shift > 40)) throw new ProtocolError(`MEMORY: ${f}.huge_shift is ${shift}, expected 12 to 40 for hugetlb`);
    segs.push(kind === 'hugetlb' ? { start: s, end: e, kind, hugePageShift: shift } : { start: s, end: e, kind });
  }
  return segs;
}

/** Decodes one request frame (the bytes after its length). */
export function decodeRequest(frame: Uint8Array): Request {
  const bytes = new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
  return decodeFrame(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, bytes.length);
}

/**
 * Decodes the request frame at `bytes[start, end)` in place; `view` is a DataView over all of
 * `bytes`. What the request keeps (ioctl arguments, user memory, text) is copied out, as plain
 * Uint8Arrays when `bytes` is one (the model's copy_from_user slices them: a Buffer's slice is
 * a view).
 */
export function decodeFrame(bytes: Uint8Array, view: DataView, start: number, end: number): Request {
  if (start === end) throw new ProtocolError('empty frame: expected an op byte');
  const op = bytes[start]!;
  const name = OP_NAMES[op];
  if (!name) throw new ProtocolError(`unknown op ${op} (expected 1 to ${Object.keys(Op).length})`);
  const r = new FieldReader(bytes, view, start, end, name);
  let req: Request;
  switch (op) {
    case Op.HELLO:
      req = { op: 'hello', realPid: r.u32('real_pid'), attach: r.i32('attach_pid'), comm: r.text('comm', 256) };
      break;
    case Op.OPEN:
      req = { op: 'open', path: r.text('path', 4096) };
      break;
    case Op.CLOSE:
    case Op.DUP:
      req = { op: op === Op.CLOSE ? 'close' : 'dup', fd: r.i32('fd') };
      break;
    case Op.IOCTL: {
      const fd = r.i32('fd');
      const request = r.u32('request');
      const kind = r.u8('arg_kind');
      if (kind > 2) throw new ProtocolError(`IOCTL: field arg_kind is ${kind}, expected 0 (value), 1 (bytes) or 2 (bytes and user memory)`);
      if (kind === 2) {
        const n = r.u32('arg_len');
        if (n > MAX_BYTES_FIELD) throw new ProtocolError(`IOCTL: field arg_len is ${n}, the limit is ${MAX_BYTES_FIELD}`);
        const arg = r.copy('arg_bytes', n);
        const addr = r.u64('user_addr');
        req = { op: 'ioctl', fd, request, arg, user: { addr, bytes: r.copyRest('user_bytes', MAX_BYTES_FIELD) } };
        break;
      }
      const arg: IoctlArg = kind === 0 ? r.u64('arg_value') : r.copyRest('arg_bytes', MAX_BYTES_FIELD);
      req = { op: 'ioctl', fd, request, arg };
      break;
    }
    case Op.READ:
      req = { op: 'read', fd: r.i32('fd'), count: r.u32('count') };
      break;
    case Op.LSEEK:
      req = { op: 'lseek', fd: r.i32('fd'), offset: r.i64('offset'), whence: r.u32('whence') };
      break;
    case Op.MEMORY: {
      const start = r.u64('start');
      const end = r.u64('end');
      if (start >= end) throw new ProtocolError(`MEMORY: start 0x${start.toString(16)} is not below end 0x${end.toString(16)}`);
      req = { op: 'memory', start, end, segments: decodeSegments(r, start, end) };
      break;
    }
    case Op.PROC_TEXT: {
      const w = r.u8('file');
      const file = PROC_FILES[w];
      if (!file) throw new ProtocolError(`PROC_TEXT: field file is ${w}, expected 0 to ${PROC_FILES.length - 1}`);
      req = { op: 'procText', file };
      break;
    }
    case Op.SETRLIMIT_MEMLOCK:
      req = { op: 'setrlimitMemlock', bytes: r.u64('bytes') };
      break;
    case Op.SETUID:
      req = { op: 'setuid', uid: r.u32('uid') };
      break;
    case Op.REAP:
      req = { op: 'reap', pid: r.i32('pid') };
      break;
    case Op.FORK:
      req = { op: 'fork' };
      break;
    case Op.EXIT:
      req = { op: 'exit' };
      break;
    default:
      req = { op: 'inspect' };
  }
  r.end();
  return req;
}

/** Capacity an answer buffer keeps between writes; a larger answer's buffer is dropped after it. */
const KEPT_ANSWER_BYTES = 64 * 1024;

/**
 * Answer frames (length, ret, errno, body) laid out one after another in one buffer the
 * connection keeps, written out together and cleared.
 */
export class AnswerWriter {
  bytes = new Uint8Array(4096);
  private view = new DataView(this.bytes.buffer);
  /** Bytes of answers waiting to be written. */
  length = 0;

  put(ret: number, errno: number, body?: Uint8Array): void {
    const n = body ? body.length : 0;
    this.reserve(12 + n);
    const at = this.length;
    this.view.setUint32(at, 8 + n, true);
    this.view.setInt32(at + 4, ret, true);
    this.view.setInt32(at + 8, errno, true);
    if (body) this.bytes.set(body, at + 12);
    this.length = at + 12 + n;
  }

  /** The answers were written: start again, and give back the room a large answer took. */
  clear(): void {
    this.length = 0;
    if (this.bytes.length > KEPT_ANSWER_BYTES) this.resize(KEPT_ANSWER_BYTES);
  }

  private reserve(n: number): void {
    const need = this.length + n;
    if (need > this.bytes.length) this.resize(Math.max(need, 2 * this.bytes.length));
  }

  private resize(cap: number): void {
    const b = new Uint8Array(cap);
    b.set(this.bytes.subarray(0, this.length));
    this.bytes = b;
    this.view = new DataView(b.buffer);
  }
}
