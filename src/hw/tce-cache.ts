/**
 * The PHB's cached leaf TCEs of one TVE: decoded page index → TCE. Indices below DENSE_LIMIT
 * (and below the TVE's span) live in chunks of 2^CHUNK_SHIFT pages made on first use (the list
 * of chunks grows up to the highest one used): per page two slots, the generation it was written
 * in and the TCE, side by side, so a hit is two array reads (the chunk, then the page's slots in
 * one cache line) and a kill forgets every entry by moving to a new generation. Indices past the
 * chunks (a TVE of a larger span, or one rewritten to a larger table: the PHB does not flush its
 * cache then) use a Map.
 */

/** Pages per chunk: chunk = index >>> CHUNK_SHIFT, slots = 2 * (index & CHUNK_MASK) and the next. */
const CHUNK_SHIFT = 12;
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;
/** Indices below this go to chunks (a list of at most 2^16 chunks per TVE). */
export const DENSE_LIMIT = 2 ** 28;

export class TveCache {
  /** Indices below `limit` go to the chunks, others to `map`. */
  private readonly limit: number;
  /**
   * By chunk: for each page its generation (0: never written, or deleted) and its TCE. A TCE is
   * only meaningful when its generation is the current one.
   */
  private readonly chunks: (Float64Array | undefined)[] = [];
  private map: Map<number, number> | null = null;
  private gen = 1;
  size = 0;

  constructor(span: number) {
    this.limit = Math.ceil(Math.min(span, DENSE_LIMIT) / (CHUNK_MASK + 1)) * (CHUNK_MASK + 1);
  }

  /**
   * The cached TCE, or -1 (TCEs are ≥ 0; a number either way keeps the hit path unboxed). Small
   * enough for V8 to inline into the DMA hit path; indices past the chunks go to farGet().
   */
  get(index: number): number {
    if (index >= this.limit) return this.farGet(index);
    const c = this.chunks[index >>> CHUNK_SHIFT];
    const slot = (index & CHUNK_MASK) << 1;
    return c !== undefined && c[slot] === this.gen ? c[slot + 1]! : -1;
  }

  /** get() of an index past the chunks. */
  private farGet(index: number): number {
    return this.map?.get(index) ?? -1;
  }

  set(index: number, tce: number): void {
    if (index >= this.limit) {
      this.map ??= new Map();
      if (!this.map.has(index)) this.size++;
      this.map.set(index, tce);
      return;
    }
    const k = index >>> CHUNK_SHIFT;
    while (this.chunks.length <= k) this.chunks.push(undefined);
    let c = this.chunks[k];
    if (c === undefined) {
      c = new Float64Array(2 * (CHUNK_MASK + 1));
      this.chunks[k] = c;
    }
    const slot = (index & CHUNK_MASK) << 1;
    if (c[slot] !== this.gen) this.size++;
    c[slot] = this.gen;
    c[slot + 1] = tce;
  }

  delete(index: number): void {
    if (index >= this.limit) {
      if (this.map?.delete(index)) this.size--;
      return;
    }
    const c = this.chunks[index >>> CHUNK_SHIFT];
    const slot = (index & CHUNK_MASK) << 1;
    if (c !== undefined && c[slot] === this.gen) {
      c[slot] = 0;
      this.size--;
    }
  }

  /** Forget every entry. */
  clear(): void {
    // Generations wrap after 2^32 - 1 kills: then the slots are emptied for real.
    if (this.gen === 0xffff_ffff) {
      for (const c of this.chunks) c?.fill(0);
      this.gen = 0;
    }
    this.gen++;
    this.map?.clear();
    this.size = 0;
  }

  /** The entries as a Map (for reports: built on each call). */
  entries(): ReadonlyMap<number, number> {
    const out = new Map<number, number>();
    for (let k = 0; k < this.chunks.length; k++) {
      const c = this.chunks[k];
      if (c === undefined) continue;
      for (let i = 0; i <= CHUNK_MASK; i++) if (c[2 * i] === this.gen) out.set(k * (CHUNK_MASK + 1) + i, c[2 * i + 1]!);
    }
    for (const [index, tce] of this.map ?? []) out.set(index, tce);
    return out;
  }
}
