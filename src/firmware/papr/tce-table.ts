/**
 * A hypervisor-owned TCE table (QEMU's SpaprTceTable): one LIOBN, enabled or not, its window
 * (bus offset, page shift, number of entries) and the raw TCEs the guest stored, kept sparse.
 */
export class SpaprTceTable {
  busOffset = 0n;
  pageShift = 12;
  /** nb_table: entries in the window; 0 = disabled. */
  nbTable = 0;
  private readonly entries = new Map<number, bigint>();

  constructor(readonly liobn: number) {}

  get enabled(): boolean {
    return this.nbTable !== 0;
  }

  /**
   * spapr_tce_table_enable(): the entry count is a u32; one that truncates to 0 leaves the table
   * disabled and untouched. Returns whether the table is now enabled.
   */
  enable(pageShift: number, busOffset: bigint, nbTable: bigint): boolean {
    const nb = Number(BigInt.asUintN(32, nbTable));
    if (!nb) return false;
    this.pageShift = pageShift;
    this.busOffset = busOffset;
    this.nbTable = nb;
    this.entries.clear();
    return true;
  }

  disable(): void {
    this.nbTable = 0;
    this.busOffset = 0n;
    this.entries.clear();
  }

  /** Entry number of a bus address, or -1 when outside the window (an ioba below it underflows). */
  index(ioba: bigint): number {
    const i = BigInt.asUintN(64, ioba - this.busOffset) >> BigInt(this.pageShift);
    return i < BigInt(this.nbTable) ? Number(i) : -1;
  }

  get(index: number): bigint {
    return this.entries.get(index) ?? 0n;
  }

  set(index: number, tce: bigint): void {
    if (tce === 0n) this.entries.delete(index);
    else this.entries.set(index, tce);
  }

  /** Set n consecutive entries from `first` to one value (zeroing visits only what is stored). */
  fill(first: number, n: number, tce: bigint): void {
    if (tce !== 0n) {
      for (let i = first; i < first + n; i++) this.entries.set(i, tce);
    } else if (this.entries.size < n) {
      for (const i of [...this.entries.keys()]) if (i >= first && i < first + n) this.entries.delete(i);
    } else {
      for (let i = first; i < first + n; i++) this.entries.delete(i);
    }
  }

  /** Stored entries, index → TCE (for the checker and reports). */
  stored(): IterableIterator<[number, bigint]> {
    return this.entries.entries();
  }

  /** Entries holding a non-zero TCE (for the checker and reports). */
  get used(): number {
    return this.entries.size;
  }
}
