/**
 * The PHB's RID translation table: requester ID (bus << 8 | devfn, 16 bits) → PE number, one
 * slot per RID as the hardware's table (and the kernel's `pe_rmap`) keeps it. get/set/delete
 * (as a Map's) are for firmware and the machine; `peOf` is the DMA path's lookup.
 */

/** RIDs are 16 bits: bus (8) and devfn (8). */
export const RID_COUNT = 1 << 16;

export class RidTable {
  /** PE number by RID, -1 for a RID with no PE. */
  private readonly pes = new Int32Array(RID_COUNT).fill(-1);

  /** The PE of a RID, or -1 (one array read). */
  peOf(rid: number): number {
    return (rid & 0xffff) === rid ? this.pes[rid]! : -1;
  }

  get(rid: number): number | undefined {
    const pe = this.peOf(rid);
    return pe < 0 ? undefined : pe;
  }

  set(rid: number, pe: number): void {
    if ((rid & 0xffff) !== rid) throw new RangeError(`RTT rid ${rid}: must be an integer in [0, ${RID_COUNT - 1}]`);
    if (!Number.isInteger(pe) || pe < 0 || pe > 0x7fff_ffff) throw new RangeError(`RTT pe ${pe}: must be an integer in [0, 2^31 - 1]`);
    this.pes[rid] = pe;
  }

  delete(rid: number): boolean {
    if (this.peOf(rid) < 0) return false;
    this.pes[rid] = -1;
    return true;
  }
}
