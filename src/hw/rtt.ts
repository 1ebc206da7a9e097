/**
 * The PHB's RID translation table: requester ID (bus << 8 | devfn, 16 bits) → PE number, one
 * 16-bit slot per RID as the hardware's table (and the kernel's `pe_rmap`) keeps it.
 * get/set/delete (as a Map's) are for firmware and the machine; `peOf` is the DMA path's lookup.
 */

/** RIDs are 16 bits: bus (8) and devfn (8). */
export const RID_COUNT = 1 << 16;
/** A slot with no PE; PE numbers go up to NO_PE - 1. */
const NO_PE = 0xffff;

export class RidTable {
  /** PE number by RID, NO_PE for a RID with no PE. */
  private readonly pes = new Uint16Array(RID_COUNT).fill(NO_PE);

  /** The PE of a RID, or -1 (one array read). */
  peOf(rid: number): number {
    const pe = (rid & 0xffff) === rid ? this.pes[rid]! : NO_PE;
    return pe === NO_PE ? -1 : pe;
  }

  get(rid: number): number | undefined {
    const pe = this.peOf(rid);
    return pe < 0 ? undefined : pe;
  }

  set(rid: number, pe: number): void {
    if ((rid & 0xffff) !== rid) throw new RangeError(`RTT rid ${rid}: must be an integer in [0, ${RID_COUNT - 1}]`);
    if (!Number.isInteger(pe) || pe < 0 || pe >= NO_PE) throw new RangeError(`RTT pe ${pe}: must be an integer in [0, ${NO_PE - 1}]`);
    this.pes[rid] = pe;
  }

  delete(rid: number): boolean {
    if (this.peOf(rid) < 0) return false;
    this.pes[rid] = NO_PE;
    return true;
  }
}
