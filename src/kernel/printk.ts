/**
 * The kernel log: every line the modelled kernel prints, readable as /dev/kmsg. Lines are worded
 * exactly as the real kernel prints them.
 *
 * The log is printk's ring buffer, sized as the modelled kernels size it: a text ring of
 * 2^LOG_BUF_SHIFT bytes and 2^(LOG_BUF_SHIFT - 5) record descriptors. A record takes its text
 * plus an 8-byte id, rounded up to 8 bytes, in the text ring; a block never wraps (one that would
 * leaves the rest of the ring unused and starts over at its beginning). A new record pushes out
 * the oldest ones whose blocks it overwrites, or the oldest one when every descriptor is in use.
 * Sequence numbers keep counting from boot, so a reader that fell behind sees what it missed.
 */
import type { EventLog } from '../base/events.js';

/** CONFIG_LOG_BUF_SHIFT of Debian's 6.12 ppc64el kernels: a 128 KiB text ring. */
export const LOG_BUF_SHIFT = 17;
/** log2 of the average record size the descriptor ring is sized for (PRB_AVGBITS). */
const PRB_AVGBITS = 5;
/** The id in front of each text block, and the blocks' alignment. */
const BLOCK_ID_BYTES = 8;

export class KernelLog {
  private readonly dataSize = 2 ** LOG_BUF_SHIFT;
  private readonly descCount = 2 ** (LOG_BUF_SHIFT - PRB_AVGBITS);
  /** Records still in the ring from index `first` on, oldest first, and where their blocks begin. */
  private texts: string[] = [];
  private begins: number[] = [];
  private first = 0;
  /** Logical position in the text ring after the newest block. */
  private headLpos = 0;
  /** The sequence number the next record gets: the number of records printed since boot. */
  nextSeq = 0;

  constructor(private readonly log: EventLog) {}

  /** The sequence number of the oldest record still in the ring. */
  get firstSeq(): number {
    return this.nextSeq - (this.texts.length - this.first);
  }

  /** The records still in the ring, oldest first. */
  get lines(): string[] {
    return this.texts.slice(this.first);
  }

  /** The text of record `seq`, or undefined when it is not (or no longer) in the ring. */
  record(seq: number): string | undefined {
    const i = seq - this.firstSeq;
    return i >= 0 && seq < this.nextSeq ? this.texts[this.first + i] : undefined;
  }

  /** The records from `seq` on that are still in the ring. */
  since(seq: number): string[] {
    return this.texts.slice(this.first + Math.max(0, seq - this.firstSeq));
  }

  printk(text: string): void {
    this.store(text);
    this.log.emit({ layer: 'kernel', kind: 'printk', text });
  }

  /**
   * A kernel WARNING splat. Registers and the call trace are not modelled; the lines that name
   * the warning (file, line, function, task) are worded as the kernel words them.
   */
  warn(file: string, line: number, fn: string, task: { pid: number; uid: number; comm: string }): void {
    this.printk('------------[ cut here ]------------');
    this.printk(`WARNING: CPU: 0 PID: ${task.pid} at ${file}:${line} ${fn}+0x0/0x0`);
    this.printk(`CPU: 0 UID: ${task.uid} PID: ${task.pid} Comm: ${task.comm.slice(0, 15)}`);
    this.printk('---[ end trace 0000000000000000 ]---');
  }

  private store(text: string): void {
    const size = (Buffer.byteLength(text) + BLOCK_ID_BYTES + BLOCK_ID_BYTES - 1) & -BLOCK_ID_BYTES;
    const begin = this.headLpos;
    let next = begin + size;
    const wrapStart = next - (next % this.dataSize);
    if (begin - (begin % this.dataSize) !== wrapStart) next = wrapStart + size;
    this.headLpos = next;
    this.texts.push(text);
    this.begins.push(begin);
    this.nextSeq++;
    const tailLimit = next - this.dataSize;
    while (this.texts.length - this.first > this.descCount || this.begins[this.first]! < tailLimit) this.first++;
    if (this.first >= this.descCount) {
      this.texts = this.texts.slice(this.first);
      this.begins = this.begins.slice(this.first);
      this.first = 0;
    }
  }
}
