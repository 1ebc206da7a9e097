/**
 * One order's free list of the buddy allocator (the kernel's `struct free_area`), as a bitmap over
 * the order's block indices (pfn / 2^order): a block's membership is one bit, and the lowest free
 * block is found from a lower bound on it, skipping chunks that hold no free block. Chunks of the
 * bitmap are made when a block in them is first freed, so a sparse list costs little memory
 * however large RAM is.
 */

/** Block indices per chunk of the bitmap: 2^CHUNK_BITS_SHIFT bits, 256 32-bit words (1 KiB). */
const CHUNK_BITS_SHIFT = 13;
const WORD_MASK = (1 << (CHUNK_BITS_SHIFT - 5)) - 1;

export class FreeArea {
  /** How many blocks of this order are free (`nr_free`). */
  nrFree = 0;
  private readonly chunks: (Uint32Array | undefined)[];
  /** Free blocks per chunk: the search for the lowest skips the empty ones. */
  private readonly counts: Uint32Array;
  /** No free block has a lower index than this. */
  private low = 0;

  /** A free list for block indices 0 to `blocks` - 1 (at most 2^32). */
  constructor(blocks: number) {
    if (blocks > 2 ** 32) throw new RangeError(`free list of ${blocks} blocks is over the limit of 2^32`);
    const n = Math.ceil(blocks / 2 ** CHUNK_BITS_SHIFT);
    this.chunks = new Array(n).fill(undefined);
    this.counts = new Uint32Array(n);
  }

  has(index: number): boolean {
    const c = this.chunks[index >>> CHUNK_BITS_SHIFT];
    return c !== undefined && (c[(index >>> 5) & WORD_MASK]! & (1 << (index & 31))) !== 0;
  }

  /** Put a block on the list; it must not be on it already. */
  add(index: number): void {
    const ci = index >>> CHUNK_BITS_SHIFT;
    let c = this.chunks[ci];
    if (c === undefined) {
      c = new Uint32Array(WORD_MASK + 1);
      this.chunks[ci] = c;
    }
    c[(index >>> 5) & WORD_MASK]! |= 1 << (index & 31);
    this.counts[ci]!++;
    this.nrFree++;
    if (index < this.low) this.low = index;
  }

  /** Take a block off the list; it must be on it. */
  delete(index: number): void {
    const ci = index >>> CHUNK_BITS_SHIFT;
    this.chunks[ci]![(index >>> 5) & WORD_MASK]! &= ~(1 << (index & 31));
    this.counts[ci]!--;
    this.nrFree--;
  }

  /** The lowest free block's index; the list must not be empty. */
  lowest(): number {
    let ci = this.low >>> CHUNK_BITS_SHIFT;
    let w = (this.low >>> 5) & WORD_MASK;
    if (this.counts[ci] === 0) {
      do ci++;
      while (this.counts[ci] === 0);
      w = 0;
    }
    const c = this.chunks[ci]!;
    while (c[w] === 0) w++;
    const bits = c[w]!;
    // The lowest set bit of the word: 31 - clz of the bit isolated by bits & -bits.
    const index = ci * 2 ** CHUNK_BITS_SHIFT + w * 32 + 31 - Math.clz32(bits & -bits);
    this.low = index;
    return index;
  }
}
