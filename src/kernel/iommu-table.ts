/**
 * struct iommu_table and its ops (arch/powerpc/include/asm/iommu.h). Entry numbers are absolute
 * (bus address >> it_page_shift) unless a name says otherwise; physical addresses are numbers.
 */
import type { DmaDirection } from '../hw/tce.js';
import type { TableGroup } from './table-group.js';

export interface IommuPool {
  start: number;
  end: number;
  hint: number;
}

export interface XchgResult {
  ret: number;
  /** The old real address (permission bits stripped). */
  hpa: number;
  /** The old direction. */
  dir: DmaDirection;
}

/**
 * The entries of one run exchanged by IommuTableOps.xchgRunNoKill, entry `index + k` at k. A
 * caller that exchanges many runs reuses one.
 */
export class TceRun {
  /** In: the new real address of each entry (not read when clearing). */
  readonly hpa: Float64Array;
  /** Out: the old TCE of each entry attempted (real address and permission bits). */
  readonly old: Float64Array;
  /** Out: the error of the last entry attempted, 0 when every entry was exchanged. */
  ret = 0;

  constructor(readonly capacity: number) {
    this.hpa = new Float64Array(capacity);
    this.old = new Float64Array(capacity);
  }
}

/** iommu_table_ops. `index` is an absolute entry number. */
export interface IommuTableOps {
  /** Write npages TCEs from physical address `pa` (ops.set, with the platform's kill). */
  set(tbl: IommuTable, index: number, npages: number, pa: number, dir: DmaDirection): number;
  /**
   * Atomically replace one TCE; no invalidation. dir = DMA_NONE clears. The result goes into
   * `out` when given (a caller exchanging many entries reuses one), else a new object.
   */
  xchgNoKill(tbl: IommuTable, index: number, hpa: number, dir: DmaDirection, out?: XchgResult): XchgResult;
  /**
   * How many entries from `index` on (at least 1) xchgRunNoKill may take at once: entries whose
   * slots follow each other in one leaf level, in the hardware table and in its userspace view.
   */
  runLength(tbl: IommuTable, index: number): number;
  /**
   * xchgNoKill of `count` entries from `index` (count ≤ runLength), in order, each with
   * `run.hpa[k]` and `dir`: the table is walked once for the run. Stops after the first entry that
   * fails (its error in `run.ret`); returns the entries attempted.
   */
  xchgRunNoKill(tbl: IommuTable, index: number, count: number, dir: DmaDirection, run: TceRun): number;
  tceKill?(tbl: IommuTable, index: number, npages: number): void;
  /** Physical address of the userspace-view slot of an entry, or null (level absent and !alloc). */
  useraddrptr?(tbl: IommuTable, index: number, alloc: boolean): number | null;
  /** Zero TCEs (and invalidate). */
  clear(tbl: IommuTable, index: number, npages: number): void;
  get(tbl: IommuTable, index: number): number;
  /** Platform free at the last reference. */
  free(tbl: IommuTable): void;
}

let nextTableId = 1;

export class IommuTable {
  /**
   * Identity for events and the checker (kernel pointers are compared by this). A machine numbers
   * its own tables from 1, so the same run gives the same ids; tables built alone share a counter.
   */
  readonly id: number;
  itSize = 0;
  itOffset = 0;
  private pageShift = 12;
  /** IOMMU_PAGE_SIZE(tbl), kept with the shift (a variable-exponent power is slow in V8). */
  pageSize = 4096;
  itIndirectLevels = 0;
  itLevelSize = 0;
  /** Physical address of the (top-level) TCE array. */
  itBase = 0;
  /** Physical address of the top level of the userspace view (VFIO v2), or null. */
  itUserspace: number | null = null;
  itIndex = 0;
  itBlocksize = 16;
  itAllocatedSize = 0;
  itNid = 0;
  /** Allocation bitmap, one bit per entry relative to it_offset; null until iommu_init_table. */
  itMap: Uint8Array | null = null;
  nrPools = 1;
  poolsize = 0;
  pools: IommuPool[] = [];
  largePool: IommuPool = { start: 0, end: 0, hint: 0 };
  itReservedStart = 0;
  itReservedEnd = 0;
  /** Table groups (PEs) this table is programmed into (it_group_list). */
  readonly groups: TableGroup[] = [];
  /** Blocks of physical memory that hold the table levels: pa → order. */
  readonly levelBlocks = new Map<number, number>();
  refs = 1;
  freed = false;

  constructor(
    readonly ops: IommuTableOps,
    id?: number,
  ) {
    this.id = id ?? nextTableId++;
  }

  get itPageShift(): number {
    return this.pageShift;
  }

  set itPageShift(shift: number) {
    this.pageShift = shift;
    this.pageSize = 2 ** shift;
  }

  /** First bus address of the window. */
  get start(): bigint {
    return BigInt(this.itOffset) << BigInt(this.itPageShift);
  }

  /** Window size in bytes (it_size << it_page_shift). */
  get windowSize(): bigint {
    return BigInt(this.itSize) << BigInt(this.itPageShift);
  }

  /** True when the entry lies inside the window. */
  contains(entry: number): boolean {
    return entry >= this.itOffset && entry < this.itOffset + this.itSize;
  }
}

/** iommu_tce_table_get(): a new reference unless the table is already dying. */
export function iommuTceTableGet(tbl: IommuTable): IommuTable | null {
  if (tbl.refs <= 0) return null;
  tbl.refs++;
  return tbl;
}

/** iommu_tce_table_put(): drops a reference; at zero the platform frees the pages. Returns true if freed. */
export function iommuTceTablePut(tbl: IommuTable | null): boolean {
  if (!tbl) return false;
  if (tbl.refs <= 0) throw new Error(`put of a freed iommu_table #${tbl.id}`);
  tbl.refs--;
  if (tbl.refs > 0) return false;
  // The struct stays readable after the free, as a dangling kernel pointer would see it; its
  // TCE pages go back to the page allocator.
  tbl.ops.free(tbl);
  tbl.freed = true;
  return true;
}
