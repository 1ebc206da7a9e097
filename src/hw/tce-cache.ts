/**
 * The PHB's cached leaf TCEs of one TVE: decoded page index → TCE. Indices below DENSE_LIMIT
 * (and below the TVE's span) live in chunks of 2^CHUNK_SHIFT pages made on first use (the lists
 * of chunks grow up to the highest one used): a TCE array and the generation each slot was
 * written in, so a hit is three array reads and a kill
 * forgets every entry by moving to a new generation. Indices past the chunks (a TVE of a larger
 * span, or one rewritten to a larger table: the PHB does not flush its cache then) use a Map.
 */

/** Pages per chunk: chunk = index >>> CHUNK_SHIFT, slot = index & CHUNK_MASK. */
const CHUNK_SHIFT = 12;
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;
/** Indices below this go to chunks (a list of at most 2^16 chunks per TVE). */
export const DENSE_LIMIT = 2 ** 28;

export class TveCache {
  /** Indices below `limit` go to the chunks, others to `map`. */
  private readonly limit: number;
  /** TCEs by chunk; a slot is only meaningful when its generation is the current one. */
  private readonly tces: (Float64Array | undefined)[] = [];
  /** The generation each slot of a chunk was written in (0: never, or deleted). */
  private readonly gens: (Uint32Array | undefined)[] = [];
  private map: Map<number, number> | null = null;
  private gen = 1;
  size = 0;

  constructor(span: number) {
    this.limit = Math.ceil(Math.min(span, DENSE_LIMIT) / (CHUNK_MASK + 1)) * (CHUNK_MASK + 1);
  }

  /** The cached TCE, or -1 (TCEs are ≥ 0; a number either way keeps the hit path unboxed). */
  get(index: number): number {
    if (index >= this.limit) return this.map?.get(index) ?? -1;
    const c = index >>> CHUNK_SHIFT;
    const g = c < this.gens.length ? this.gens[c] : undefined;
    const slot = index & CHUNK_MASK;
    return g !== undefined && g[slot] === this.gen ? this.tces[c]![slot]! : -1;
  }

  set(index: number, tce: number): void {
    if (index >= this.limit) {
      this.map ??= new Map();
      if (!this.map.has(index)) this.size++;
      this.map.set(index, tce);
      return;
    }
    const c = index >>> CHUNK_SHIFT;
    while (this.gens.length <= c) {
      this.gens.push(undefined);
      this.tces.push(undefined);
    }
    let g = this.gens[c];
    if (g === undefined) {
      g = new Uint32Array(CHUNK_MASK + 1);
      this.gens[c] = g;
      this.tces[c] = new Float64Array(CHUNK_MASK + 1);
    }
    const slot = index & CHUNK_MASK;
    if (g[slot] !== this.gen) this.size++;
    g[slot] = this.gen;
    this.tces[c]![slot] = tce;
  }

  delete(index: number): void {
    if (index >= this.limit) {
      if (this.map?.delete(index)) this.size--;
      return;
    }
    const c = index >>> CHUNK_SHIFT;
    const g = c < this.gens.length ? this.gens[c] : undefined;
    const slot = index & CHUNK_MASK;
    if (g !== undefined && g[slot] === this.gen) {
      g[slot] = 0;
      this.size--;
    }
  }

  /** Forget every entry. */
  clear(): void {
    // Generations wrap after 2^32 - 1 kills: then the slots are emptied for real.
    if (this.gen === 0xffff_ffff) {
      for (const g of this.gens) g?.fill(0);
      this.gen = 0;
    }
    this.gen++;
    this.map?.clear();
    this.size = 0;
  }

  /** The entries as a Map (for reports: built on each call). */
  entries(): ReadonlyMap<number, number> {
    const out = new Map<number, number>();
    for (let c = 0; c < this.gens.length; c++) {
      const g = this.gens[c];
      if (g === undefined) continue;
      for (let slot = 0; slot <= CHUNK_MASK; slot++) if (g[slot] === this.gen) out.set(c * (CHUNK_MASK + 1) + slot, this.tces[c]![slot]!);
    }
    for (const [index, tce] of this.map ?? []) out.set(index, tce);
    return out;
  }
}
