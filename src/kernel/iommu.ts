/**
 * The kernel's TCE space allocator: the pooled bitmap allocator of arch/powerpc/kernel/iommu.c
 * and the area search it uses from lib/iommu-helper.c and lib/bitmap.c.
 *
 * Index vocabulary, as in the kernel: an *entry* is absolute (bus address >> it_page_shift); a
 * *bitmap index* (pool bounds, hints, what iommu_range_alloc returns) is relative to it_offset.
 * The bitmap keeps the kernel's bit order: bit i is bit (i & 7) of byte (i >> 3).
 */
import { GiB, shlToBig, shrToNum } from '../base/bits.js';
import type { DmaDirection } from '../hw/tce.js';
import type { IommuPool, IommuTable } from './iommu-table.js';

/** IOMMU_NR_POOLS: small-allocation pools of a window of 1 GiB or more. */
export const IOMMU_NR_POOLS = 4;
/** IOMMU_POOL_HASHBITS: bits of hash_32(cpu) that pick a pool. */
export const IOMMU_POOL_HASHBITS = 2;
/** GOLDEN_RATIO_32 (include/linux/hash.h). */
const GOLDEN_RATIO_32 = 0x61c88647;
/** npages above this go to the large pool (`largealloc = npages > 15`). */
const LARGE_ALLOC_THRESHOLD = 15;
/** The model keeps bitmaps to at most 2^32 bits (512 MiB); a larger one fails like vzalloc_node would. */
const MAX_IT_MAP_BITS = 2 ** 32;
/** Bits per `unsigned long`: the kernel sizes the bitmap in longs (BITS_TO_LONGS). */
const BITS_PER_LONG = 64;

/** IOMMU_PAGE_SIZE(tbl). (A shift: `2 ** n` with a variable n costs ~80 ns in V8.) */
export function iommuPageSize(tbl: IommuTable): number {
  return tbl.itPageShift < 31 ? 1 << tbl.itPageShift : 2 ** tbl.itPageShift;
}

/**
 * `x % size` for an integer x: by mask when x is in [0, 2^53) and size a power of two up to 2^30
 * (`x >>> 0` keeps the low 32 bits exactly), as the kernel's `x & (size - 1)`; V8 computes `%` of
 * a double with an x87 loop (fprem).
 */
export function offsetIn(x: number, size: number): number {
  return x >= 0 && size <= 0x4000_0000 && (size & (size - 1)) === 0 ? (x >>> 0) & (size - 1) : x % size;
}

/** hash_32(val, bits) from include/linux/hash.h: multiply by GOLDEN_RATIO_32, keep the top bits. */
export function hash32(val: number, bits: number): number {
  return Math.imul(val, GOLDEN_RATIO_32) >>> (32 - bits);
}

/** The per-CPU iommu_pool_hash precomputed by setup_iommu_pool_hash(): hash_32(cpu, 2). */
export function iommuPoolHash(cpu: number): number {
  return hash32(cpu, IOMMU_POOL_HASHBITS);
}

// ---- lib/bitmap.c, lib/find_bit.c -------------------------------------------------------------

/** Index of the lowest set bit of a non-zero byte (__ffs). */
function ffs8(b: number): number {
  return 31 - Math.clz32(b & -b);
}

/** find_next_zero_bit(map, size, start): the first clear bit in [start, size), or size. */
function findNextZeroBit(map: Uint8Array, size: number, start: number): number {
  if (start >= size) return size;
  let byte = start >>> 3;
  // Bits below `start` in its byte count as set.
  let b = map[byte]! | ((1 << (start & 7)) - 1);
  while (b === 0xff) {
    byte++;
    if (byte * 8 >= size) return size;
    b = map[byte]!;
  }
  return Math.min(byte * 8 + ffs8(~b & 0xff), size);
}

/** find_next_bit(map, size, start): the first set bit in [start, size), or size. */
function findNextBit(map: Uint8Array, size: number, start: number): number {
  if (start >= size) return size;
  let byte = start >>> 3;
  // Bits below `start` in its byte count as clear.
  let b = map[byte]! & ~((1 << (start & 7)) - 1) & 0xff;
  while (b === 0) {
    byte++;
    if (byte * 8 >= size) return size;
    b = map[byte]!;
  }
  return Math.min(byte * 8 + ffs8(b), size);
}

/**
 * bitmap_set() (set = true) and bitmap_clear() (set = false) of bits [start, start + nr), a
 * byte at a time with the first and last byte's masks (the kernel's BITMAP_FIRST_WORD_MASK and
 * BITMAP_LAST_WORD_MASK, by byte).
 */
function bitmapFill(map: Uint8Array, start: number, nr: number, set: boolean): void {
  if (nr <= 0) return;
  const first = start >>> 3;
  const last = (start + nr - 1) >>> 3;
  for (let b = first; b <= last; b++) {
    let mask = 0xff;
    if (b === first) mask &= 0xff << (start & 7);
    if (b === last) mask &= 0xff >>> (7 - ((start + nr - 1) & 7));
    map[b] = set ? map[b]! | mask : map[b]! & ~mask;
  }
}

/** __ALIGN_MASK(x, mask) for mask = 2^k - 1, exact below 2^53. */
function alignMaskUp(x: number, mask: number): number {
  return mask === 0 ? x : Math.ceil(x / (mask + 1)) * (mask + 1);
}

/**
 * bitmap_find_next_zero_area(map, size, start, nr, align_mask): the first run of nr clear bits
 * at or after start whose index is a multiple of align_mask + 1. Returns the index, or a value
 * above size (index + nr) when no run fits.
 */
function bitmapFindNextZeroArea(map: Uint8Array, size: number, start: number, nr: number, alignMask: number): number {
  for (;;) {
    const index = alignMaskUp(findNextZeroBit(map, size, start), alignMask);
    const end = index + nr;
    if (end > size) return end;
    const busy = findNextBit(map, end, index);
    if (busy >= end) return index;
    start = busy + 1;
  }
}

// ---- lib/iommu-helper.c -----------------------------------------------------------------------

/**
 * iommu_is_span_boundary(): true when [shift+index, shift+index+nr) crosses a boundary_size
 * segment (a power of two in the kernel, which masks: `(shift + index) & (boundary_size - 1)`).
 */
function iommuIsSpanBoundary(index: number, nr: number, shift: number, boundarySize: number): boolean {
  return offsetIn(shift + index, boundarySize) + nr > boundarySize;
}

/**
 * iommu_area_alloc(map, size, start, nr, shift, boundary_size, align_mask): find nr clear bits
 * at or after start, aligned to align_mask + 1 (relative to bitmap index 0), not crossing a
 * boundary_size segment of absolute entries (shift = it_offset), and set them. The last index
 * below size is never used (`size -= 1`). Returns the bitmap index, or -1.
 *
 * Two kernel corner cases the model bounds: a size of 0 wraps to ULONG_MAX in the kernel (the
 * model searches to the end of the bitmap's last long instead of past it), and a run longer
 * than boundary_size makes the kernel retry the same aligned index forever (the model fails).
 */
export function iommuAreaAlloc(map: Uint8Array, size: number, start: number, nr: number, shift: number, boundarySize: number, alignMask: number): number {
  if (nr > boundarySize) return -1;
  const bits = map.length * 8;
  // "We don't want the last of the limit"
  const limit = size >= 1 ? Math.min(size - 1, bits) : bits;
  for (;;) {
    const index = bitmapFindNextZeroArea(map, limit, start, nr, alignMask);
    if (index >= limit) return -1;
    if (!iommuIsSpanBoundary(index, nr, shift, boundarySize)) {
      bitmapFill(map, index, nr, true);
      return index;
    }
    start = Math.ceil((shift + index) / boundarySize) * boundarySize - shift;
  }
}

// ---- arch/powerpc/kernel/iommu.c --------------------------------------------------------------

/** The table's bitmap; a table without one (never through iommu_init_table) is a model bug. */
function itMapOf(tbl: IommuTable): Uint8Array {
  if (!tbl.itMap) throw new Error(`BUG: iommu_table #${tbl.id} has no it_map`);
  return tbl.itMap;
}

/** ALIGN(x, a): by mask for a power of two below 2^30 and x below 2^30, else by division. */
function alignUp(x: number, a: number): number {
  return a > 0 && a <= 0x4000_0000 && (a & (a - 1)) === 0 && x >= 0 && x <= 0x3fff_ffff ? (x + a - 1) & -a : Math.ceil(x / a) * a;
}

/** `a & b` on unsigned longs, for non-negative integers below 2^53. */
function and53(a: number, b: number): number {
  if (a <= 0x7fffffff && b <= 0x7fffffff) return a & b;
  const hi = (Math.floor(a / 2 ** 32) & Math.floor(b / 2 ** 32)) >>> 0;
  return hi * 2 ** 32 + ((a & b) >>> 0);
}

/**
 * iommu_table_reserve_pages(tbl, res_start, res_end): mark entry 0 used when the window starts
 * at bus address 0, clamp the absolute range [res_start, res_end) to the window and mark it used.
 * An empty range records it_reserved_start = it_reserved_end = it_offset.
 */
export function iommuTableReservePages(tbl: IommuTable, resStart: number, resEnd: number): void {
  const map = itMapOf(tbl);
  if (tbl.itOffset === 0) bitmapFill(map, 0, 1, true);
  const start = Math.max(resStart, tbl.itOffset);
  const end = Math.min(resEnd, tbl.itOffset + tbl.itSize);
  if (start >= end) {
    tbl.itReservedStart = tbl.itOffset;
    tbl.itReservedEnd = tbl.itOffset;
    return;
  }
  tbl.itReservedStart = start;
  tbl.itReservedEnd = end;
  bitmapFill(map, start - tbl.itOffset, end - start, true);
}

/**
 * iommu_init_table(tbl, nid, res_start, res_end): allocate the bitmap, reserve pages, split the
 * window into pools (4 small pools over the bottom 3/4 when the window is ≥ 1 GiB, else 1; the
 * rest is the large pool) and clear every TCE (iommu_table_clear on a normal boot). Returns
 * false when the bitmap cannot be allocated (the kernel returns NULL).
 *
 * `_nid` is the NUMA node of the bitmap (vzalloc_node); the model's bitmap has no placement.
 */
export function iommuInitTable(tbl: IommuTable, _nid: number, resStart: number, resEnd: number): boolean {
  if (tbl.itSize > MAX_IT_MAP_BITS) return false;
  tbl.itMap = new Uint8Array(Math.ceil(tbl.itSize / BITS_PER_LONG) * (BITS_PER_LONG / 8));
  iommuTableReservePages(tbl, resStart, resEnd);

  // "We only split the IOMMU table if we have 1GB or more of space"
  tbl.nrPools = tbl.itSize * iommuPageSize(tbl) >= GiB ? IOMMU_NR_POOLS : 1;
  // "We reserve the top 1/4 of the table for large allocations"
  tbl.poolsize = Math.floor(Math.floor((tbl.itSize * 3) / 4) / tbl.nrPools);
  tbl.pools = [];
  for (let i = 0; i < tbl.nrPools; i++) {
    const start = tbl.poolsize * i;
    tbl.pools.push({ start, end: start + tbl.poolsize, hint: start });
  }
  const largeStart = tbl.poolsize * tbl.nrPools;
  tbl.largePool = { start: largeStart, end: tbl.itSize, hint: largeStart };

  tbl.ops.clear(tbl, tbl.itOffset, tbl.itSize);
  return true;
}

/**
 * iommu_table_in_use(tbl): true when a bit is set outside bit 0 (when it_offset is 0) and
 * outside the reserved range.
 */
export function iommuTableInUse(tbl: IommuTable): boolean {
  const map = itMapOf(tbl);
  // ignore reserved bit0
  let start = tbl.itOffset === 0 ? 1 : 0;
  if (tbl.itReservedStart === 0 && tbl.itReservedEnd === 0) {
    return findNextBit(map, tbl.itSize, start) !== tbl.itSize;
  }
  const end = tbl.itReservedStart - tbl.itOffset;
  if (findNextBit(map, end, start) !== end) return true;
  start = tbl.itReservedEnd - tbl.itOffset;
  return findNextBit(map, tbl.itSize, start) !== tbl.itSize;
}

/**
 * iommu_range_alloc(dev, tbl, npages, handle, mask, align_order): allocate npages contiguous
 * bitmap bits.
 *
 * - `handle` (scatter-gather chaining): on the first pass a non-zero handle inside the pool is
 *   the search start; on success it becomes the end of the allocation.
 * - `mask`: the device DMA mask >> it_page_shift, in absolute entries
 *   (Number.MAX_SAFE_INTEGER for a 64-bit mask).
 * - `cpu` picks the small pool (hash_32(cpu, 2) & (nr_pools - 1)); npages > 15 use the large pool.
 * - `boundaryPages`: dma_get_seg_boundary_nr_pages(dev, it_page_shift).
 *
 * On failure the search retries the pool from its start, then each other small pool, then the
 * large pool. Returns the bitmap index (relative to it_offset), or -1 (DMA_MAPPING_ERROR).
 */
export function iommuRangeAlloc(
  tbl: IommuTable,
  npages: number,
  handle: { value: number } | null,
  mask: number,
  alignOrder: number,
  cpu: number,
  boundaryPages: number,
): number {
  if (npages === 0) return -1;
  const map = itMapOf(tbl);
  const largealloc = npages > LARGE_ALLOC_THRESHOLD;
  const alignMask = (1 << alignOrder) - 1;
  let poolNr = iommuPoolHash(cpu) & (tbl.nrPools - 1);
  let pool: IommuPool = largealloc ? tbl.largePool : tbl.pools[poolNr]!;

  for (let pass = 0; ; pass++) {
    let start = pass === 0 && handle !== null && handle.value !== 0 && handle.value >= pool.start && handle.value < pool.end ? handle.value : pool.hint;
    let limit = pool.end;
    // A small segment appended to a large one, or the last alloc ended at the very end.
    if (start >= limit) start = pool.start;

    if (limit + tbl.itOffset > mask) {
      // Unsigned arithmetic: a mask below it_offset - 1 wraps the limit past the bitmap.
      limit = mask + 1 >= tbl.itOffset ? mask - tbl.itOffset + 1 : Number.MAX_SAFE_INTEGER;
      // Constrained: try the masked hint first, from pass 1 on search pool 0 from its start
      // (the limit stays the mask's, not pool 0's end).
      if (and53(start, mask) >= limit || pass > 0) {
        pool = tbl.pools[0]!;
        start = pool.start;
      } else {
        start = and53(start, mask);
      }
    }

    const n = iommuAreaAlloc(map, limit, start, npages, tbl.itOffset, boundaryPages, alignMask);
    if (n !== -1) {
      const end = n + npages;
      // Large allocations do not bump to a new block (fragmentation); small ones do.
      pool.hint = largealloc ? end : alignUp(end, tbl.itBlocksize);
      if (handle) handle.value = end;
      return n;
    }

    // Pass 0 failed: retry this pool from its start. Passes 1..nr_pools: the next small pool.
    // Pass nr_pools + 1: last resort, the large pool. Then give up.
    if (pass > tbl.nrPools + 1) return -1;
    if (pass === tbl.nrPools + 1) {
      pool = tbl.largePool;
    } else if (pass > 0) {
      poolNr = (poolNr + 1) & (tbl.nrPools - 1);
      pool = tbl.pools[poolNr]!;
    }
    pool.hint = pool.start;
  }
}

/**
 * __iommu_free(tbl, dma_addr, npages): clear npages TCEs (ops.clear) and their bitmap bits.
 * A range outside the window is refused (the kernel prints "iommu_free: invalid entry" and
 * does nothing): returns false then, true otherwise. Bits that were not set are not checked.
 */
export function iommuFree(tbl: IommuTable, dmaAddr: bigint, npages: number): boolean {
  return iommuFreeEntry(tbl, shrToNum(dmaAddr, tbl.itPageShift), npages);
}

/** __iommu_free() of the entries from `entry` (absolute, dma_addr >> it_page_shift). */
export function iommuFreeEntry(tbl: IommuTable, entry: number, npages: number): boolean {
  const freeEntry = entry - tbl.itOffset;
  if (freeEntry + npages > tbl.itSize || entry < tbl.itOffset) return false;
  tbl.ops.clear(tbl, entry, npages);
  bitmapFill(itMapOf(tbl), freeEntry, npages, false);
  return true;
}

/**
 * iommu_alloc(dev, tbl, page, npages, direction, mask, align_order): allocate a range, write
 * its TCEs (ops.set with pa & IOMMU_PAGE_MASK) and return the bus address of the first entry,
 * or null (DMA_MAPPING_ERROR). A failing ops.set (a transient hypervisor error) frees the range.
 */
export function iommuAlloc(
  tbl: IommuTable,
  pa: number,
  npages: number,
  dir: DmaDirection,
  mask: number,
  alignOrder: number,
  cpu: number,
  boundaryPages: number,
): bigint | null {
  const entry = iommuAllocEntry(tbl, pa, npages, dir, mask, alignOrder, cpu, boundaryPages);
  return entry === -1 ? null : shlToBig(entry, tbl.itPageShift);
}

/** iommu_alloc() returning the first entry (absolute, it_offset included), or -1. */
export function iommuAllocEntry(
  tbl: IommuTable,
  pa: number,
  npages: number,
  dir: DmaDirection,
  mask: number,
  alignOrder: number,
  cpu: number,
  boundaryPages: number,
): number {
  const n = iommuRangeAlloc(tbl, npages, null, mask, alignOrder, cpu, boundaryPages);
  if (n === -1) return -1;
  const entry = n + tbl.itOffset;
  if (tbl.ops.set(tbl, entry, npages, pa - offsetIn(pa, iommuPageSize(tbl)), dir) !== 0) {
    iommuFree(tbl, shlToBig(entry, tbl.itPageShift), npages);
    return -1;
  }
  return entry;
}
