/** A fake iommu_table for allocator and DMA-API tests: ops that record set/clear, no memory. */
import type { DmaDirection } from '../../src/hw/tce.js';
import { iommuInitTable } from '../../src/kernel/iommu.js';
import { IommuTable, type IommuTableOps } from '../../src/kernel/iommu-table.js';

export type OpCall = { op: 'set'; index: number; npages: number; pa: number; dir: DmaDirection } | { op: 'clear'; index: number; npages: number };

export interface FakeTable {
  tbl: IommuTable;
  /** Every set/clear, in order (the init-time clear of the whole window included). */
  calls: OpCall[];
  /** Return values for the next ops.set calls (0 when empty). */
  setResults: number[];
}

export interface FakeTableSpec {
  itSize: number;
  itOffset?: number;
  pageShift?: number;
  /** Absolute reserved range passed to iommu_init_table. */
  resStart?: number;
  resEnd?: number;
}

/** A table through iommu_init_table(), its call log reset afterwards unless keepInitCalls. */
export function fakeTable(spec: FakeTableSpec, keepInitCalls = false): FakeTable {
  const calls: OpCall[] = [];
  const setResults: number[] = [];
  const ops: IommuTableOps = {
    set(_tbl, index, npages, pa, dir) {
      calls.push({ op: 'set', index, npages, pa, dir });
      return setResults.shift() ?? 0;
    },
    xchgNoKill() {
      throw new Error('xchg_no_kill is not used by the kernel allocator');
    },
    runLength: () => 1,
    xchgRunNoKill() {
      throw new Error('xchg_no_kill is not used by the kernel allocator');
    },
    clear(_tbl, index, npages) {
      calls.push({ op: 'clear', index, npages });
    },
    get: () => 0,
    free: () => {},
  };
  const tbl = new IommuTable(ops);
  tbl.itSize = spec.itSize;
  tbl.itOffset = spec.itOffset ?? 0;
  tbl.itPageShift = spec.pageShift ?? 12;
  if (!iommuInitTable(tbl, 0, spec.resStart ?? 0, spec.resEnd ?? 0)) throw new Error('iommu_init_table failed');
  if (!keepInitCalls) calls.length = 0;
  return { tbl, calls, setResults };
}

/** Bit i of the table's bitmap. */
export function bit(tbl: IommuTable, i: number): boolean {
  return ((tbl.itMap![i >>> 3]! >> (i & 7)) & 1) === 1;
}

/** Set bits [start, end) of the bitmap directly (test setup: an occupied region). */
export function occupy(tbl: IommuTable, start: number, end: number): void {
  for (let i = start; i < end; i++) tbl.itMap![i >>> 3] |= 1 << (i & 7);
}

/** Indices of all set bits. */
export function setBits(tbl: IommuTable): number[] {
  const out: number[] = [];
  for (let i = 0; i < tbl.itMap!.length * 8; i++) if (bit(tbl, i)) out.push(i);
  return out;
}
