/**
 * The PHB's cached leaf TCEs of one TVE: decoded page index → TCE. A window of up to
 * DENSE_ENTRIES pages keeps them in arrays indexed by page (a hit is two array reads); a kill
 * forgets them all at once by moving to a new generation. A larger window, or an index past the
 * arrays (a TVE rewritten to a larger table: the PHB does not flush its cache then), uses a Map.
 */

/** Windows of up to this many IOMMU pages get the arrays (8 bytes per page, and a number per TCE cached). */
export const DENSE_ENTRIES = 1 << 16;

export class TveCache {
  private map: Map<number, number> | null = null;
  /**
   * A plain array: a TCE read from it is the number object already stored, where one read from
   * a Float64Array and returned from a call V8 did not inline is boxed anew (TCEs pass 2^30).
   */
  private tces: (number | undefined)[] | null = null;
  /** The generation each slot of `tces` was written in; a slot of another generation is empty. */
  private gens: Uint32Array | null = null;
  private gen = 1;
  size = 0;

  constructor(span: number) {
    if (span <= DENSE_ENTRIES) {
      this.tces = new Array<number | undefined>(span).fill(undefined);
      this.gens = new Uint32Array(span);
    } else this.map = new Map();
  }

  get(index: number): number | undefined {
    const gens = this.gens;
    return gens === null ? this.map!.get(index) : index < gens.length && gens[index] === this.gen ? this.tces![index] : undefined;
  }

  set(index: number, tce: number): void {
    const gens = this.gens;
    if (gens && index < gens.length) {
      if (gens[index] !== this.gen) this.size++;
      gens[index] = this.gen;
      this.tces![index] = tce;
      return;
    }
    const map = this.toMap();
    if (!map.has(index)) this.size++;
    map.set(index, tce);
  }

  delete(index: number): void {
    const gens = this.gens;
    if (gens) {
      if (index < gens.length && gens[index] === this.gen) {
        gens[index] = 0;
        this.size--;
      }
    } else if (this.map!.delete(index)) this.size--;
  }

  /** Forget every entry. */
  clear(): void {
    if (this.gens) {
      // Generations wrap after 2^32 - 1 kills: then the slots are emptied for real.
      if (this.gen === 0xffff_ffff) {
        this.gens.fill(0);
        this.gen = 0;
      }
      this.gen++;
    } else this.map!.clear();
    this.size = 0;
  }

  /** The entries as a Map (for reports; the arrays are not kept in sync with it). */
  entries(): ReadonlyMap<number, number> {
    if (this.map) return this.map;
    const out = new Map<number, number>();
    for (let i = 0; i < this.gens!.length; i++) if (this.gens![i] === this.gen) out.set(i, this.tces![i]!);
    return out;
  }

  /** Move to the Map for good (an index past the arrays). */
  private toMap(): Map<number, number> {
    if (!this.map) {
      this.map = new Map(this.entries());
      this.tces = null;
      this.gens = null;
    }
    return this.map;
  }
}
