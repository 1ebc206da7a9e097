/**
 * Multi-level TCE tables stored in physical memory (powernv/pci-ioda-tce.c): the layout of
 * pnv_pci_ioda2_table_alloc_pages, the pnv_tce() walk with on-demand levels, and the TCE
 * build/xchg/free/get operations.
 */
import { ilog2 } from '../../base/bits.js';
import { getU64BE, type PhysMemory, viewSetU64BE, viewU64BE } from '../../hw/memory.js';
import { DMA_NONE, type DmaDirection, directionToPerm, TCE_PCI_READ, TCE_PCI_WRITE, tceAddr, tceDirection, tcePerm } from '../../hw/tce.js';
import type { KernelLog } from '../printk.js';
import type { IommuTable, TceRun, XchgResult } from '../iommu-table.js';

export const POWERNV_IOMMU_DEFAULT_LEVELS = 2;
export const POWERNV_IOMMU_MAX_LEVELS = 5;

export interface TceMemory {
  mem: PhysMemory;
  klog: KernelLog;
}

/** pnv_alloc_tce_level(): one zeroed block of 2^shift bytes, or null with the kernel's message. */
export function pnvAllocTceLevel(ctx: TceMemory, tbl: IommuTable, shift: number, user: boolean): number | null {
  const order = shift - ctx.mem.pageShift;
  const pfn = ctx.mem.allocPages(order, { kind: user ? 'tce-shadow' : 'tce-table', label: `iommu_table#${tbl.id}${user ? ' userspace view' : ''}` });
  if (pfn === null) {
    ctx.klog.printk(`Failed to allocate a TCE memory, level shift=${shift}`);
    return null;
  }
  const pa = pfn * ctx.mem.pageSize;
  tbl.levelBlocks.set(pa, order);
  return pa;
}

function freeLevel(ctx: TceMemory, tbl: IommuTable, pa: number): void {
  const order = tbl.levelBlocks.get(pa);
  if (order === undefined) throw new Error(`iommu_table#${tbl.id}: freeing an unknown level at 0x${pa.toString(16)}`);
  tbl.levelBlocks.delete(pa);
  ctx.mem.freePages(pa / ctx.mem.pageSize, order);
}

/**
 * pnv_pci_ioda2_table_alloc_pages(): validates levels and size, allocates only the top level
 * (and the same-shaped userspace view when asked), and fills the table fields.
 */
export function pnvPciIoda2TableAllocPages(
  ctx: TceMemory,
  tbl: IommuTable,
  nid: number,
  busOffset: bigint,
  pageShift: number,
  windowSize: bigint,
  levels: number,
  allocUserspaceCopy: boolean,
): number {
  if (levels === 0 || levels > POWERNV_IOMMU_MAX_LEVELS) return -22;
  if (windowSize <= 0n || (windowSize & (windowSize - 1n)) !== 0n) return -22;
  const windowShift = ilog2(windowSize);
  // The kernel computes these shifts in unsigned int: a page larger than the window wraps.
  let entriesShift = u32(windowShift - pageShift);
  const tableShift = Math.max(u32(entriesShift + 3), ctx.mem.pageShift);
  entriesShift = Math.floor(u32(entriesShift + levels - 1) / levels);
  const levelShift = Math.max(u32(entriesShift + 3), ctx.mem.pageShift);
  if ((levelShift - 3) * levels + pageShift >= 55) return -22;
  const top = pnvAllocTceLevel(ctx, tbl, levelShift, false);
  if (top === null) return -12;
  let uas: number | null = null;
  if (allocUserspaceCopy) {
    uas = pnvAllocTceLevel(ctx, tbl, levelShift, true);
    if (uas === null) {
      freeLevel(ctx, tbl, top);
      return -12;
    }
  }
  tbl.itBlocksize = 16;
  tbl.itBase = top;
  tbl.itPageShift = pageShift;
  tbl.itOffset = Number(busOffset >> BigInt(pageShift));
  tbl.itIndex = 0;
  tbl.itSize = 2 ** (tableShift - 3);
  tbl.itLevelSize = 2 ** (levelShift - 3);
  tbl.itIndirectLevels = levels - 1;
  tbl.itUserspace = uas;
  tbl.itNid = nid;
  return 0;
}

/**
 * pnv_tce(): physical address of the slot for entry `idx` (relative to it_offset) in the
 * hardware table or its userspace view; levels are allocated on demand when `alloc`. Bits of
 * idx above the table's reach are dropped and a flat table is not bounds-checked, as in the kernel.
 */
export function pnvTce(ctx: TceMemory, tbl: IommuTable, user: boolean, idx: number, alloc: boolean): number | null {
  const levelSize = tbl.itLevelSize;
  if (tbl.itIndirectLevels === 1 && idx >= 0 && idx <= 0xffff_ffff && levelSize <= 0x4000_0000) {
    // Two levels, the leaf present and an index below 2^32 (levels are powers of two): slots by
    // shift and mask, in a function small enough for V8 to inline. The rest is pnvTceWalk.
    const bits = 31 - Math.clz32(levelSize);
    const mem = ctx.mem;
    const at = (user ? tbl.itUserspace! : tbl.itBase) + ((idx >>> bits) & (levelSize - 1)) * 8;
    // The top level's page through its DataView (a page never written reads as zeros).
    const dv = mem.pageView(at, false);
    const tce = dv === null ? 0 : viewU64BE(dv, at & (mem.pageSize - 1));
    if (tce) return tceAddr(tce) + (idx & (levelSize - 1)) * 8;
  }
  return pnvTceWalk(ctx, tbl, user, idx, alloc);
}

/** pnv_tce() level by level, allocating an absent level when `alloc`. */
function pnvTceWalk(ctx: TceMemory, tbl: IommuTable, user: boolean, idx: number, alloc: boolean): number | null {
  let base = user ? tbl.itUserspace! : tbl.itBase;
  let level = tbl.itIndirectLevels;
  const levelSize = tbl.itLevelSize;
  let rest = idx;
  // Entries one slot of the current level covers: levelSize^level, divided down level by level.
  let span = 1;
  for (let l = 0; l < level; l++) span *= levelSize;
  while (level) {
    const q = Math.floor(rest / span);
    const n = q - Math.floor(q / levelSize) * levelSize;
    const slot = base + n * 8;
    let tce = ctx.mem.readU64BE(slot);
    if (!tce) {
      if (!alloc) return null;
      const next = pnvAllocTceLevel(ctx, tbl, Math.log2(levelSize) + 3, user);
      if (next === null) return null;
      tce = next + (TCE_PCI_READ | TCE_PCI_WRITE);
      ctx.mem.writeU64BE(slot, tce);
    }
    base = tceAddr(tce);
    rest -= q * span;
    span /= levelSize;
    level--;
  }
  return base + rest * 8;
}

/** C unsigned int arithmetic. */
function u32(n: number): number {
  return n >>> 0;
}

function writeTce(ctx: TceMemory, slot: number, value: number): void {
  // A flat table is not bounds-checked: an entry past its end lands in whatever memory follows.
  if (!ctx.mem.isRam(slot)) return;
  ctx.mem.writeU64BE(slot, value);
}

/**
 * Write `count` consecutive slots from `slot`: `first`, `first + step`, ... (writeTce for each,
 * done a memory page at a time, two 32-bit stores per entry through the page's DataView). Zeros
 * into a page never written leave it unwritten: it reads as zeros already.
 */
function writeTces(ctx: TceMemory, slot: number, count: number, first: number, step: number): void {
  const mem = ctx.mem;
  const pageSize = mem.pageSize;
  const mask = pageSize - 1;
  const zeros = first === 0 && step === 0;
  for (let j = 0; j < count; ) {
    const at = slot + j * 8;
    const off = at & mask;
    const n = Math.min(count - j, (pageSize - off) >>> 3);
    const dv = mem.isRam(at) ? mem.pageView(at, !zeros) : null;
    if (dv !== null) {
      if (zeros) zeroTces(dv, off, n);
      else setTces(dv, off, n, first + j * step, step);
    }
    j += n;
  }
}

function zeroTces(dv: DataView, off: number, n: number): void {
  // +0.0 is eight zero bytes: one store per entry.
  for (let end = off + n * 8; off < end; off += 8) dv.setFloat64(off, 0);
}

function setTces(dv: DataView, off: number, n: number, value: number, step: number): void {
  for (let end = off + n * 8; off < end; off += 8, value += step) viewSetU64BE(dv, off, value);
}

/**
 * The entries from `idx` (relative to it_offset) to the end of its leaf level, at most `n`: they
 * are consecutive slots. Levels are powers of two: by mask for an index below 2^32.
 */
function leafRun(tbl: IommuTable, idx: number, n: number): number {
  if (!tbl.itIndirectLevels) return n;
  const levelSize = tbl.itLevelSize;
  const inLeaf = idx >= 0 && idx <= 0xffff_ffff && levelSize <= 0x4000_0000 ? idx & (levelSize - 1) : idx % levelSize;
  return Math.min(n, levelSize - inLeaf);
}

/**
 * pnvTce() for the common case of pnv_tce_build/free: two levels, an index below 2^32, the leaf
 * present and the `n` entries in one leaf and one memory page of RAM (the DMA API's maps of a
 * few pages). Returns the first entry's slot, or -1 for anything else: then the caller walks
 * entry range by entry range. The build and the free each store through the slot's page
 * themselves, so that each is one small function V8 inlines whole.
 */
function leafSlot(ctx: TceMemory, tbl: IommuTable, idx: number, n: number): number {
  const levelSize = tbl.itLevelSize;
  if (tbl.itIndirectLevels !== 1 || n <= 0 || idx < 0 || idx > 0xffff_ffff || levelSize > 0x4000_0000) return -1;
  const inLeaf = idx & (levelSize - 1);
  if (inLeaf + n > levelSize) return -1;
  const mem = ctx.mem;
  const mask = mem.pageSize - 1;
  const at = tbl.itBase + ((idx >>> (31 - Math.clz32(levelSize))) & (levelSize - 1)) * 8;
  const top = mem.pageView(at, false);
  const tce = top === null ? 0 : viewU64BE(top, at & mask);
  if (!tce) return -1;
  const slot = tceAddr(tce) + inLeaf * 8;
  return (slot & mask) + n * 8 > mask + 1 || !mem.isRam(slot) ? -1 : slot;
}

/** pnv_tce_build(): writes npages TCEs; READ is added whenever WRITE is set. */
export function pnvTceBuild(ctx: TceMemory, tbl: IommuTable, index: number, npages: number, pa: number, dir: DmaDirection): number {
  let perm = directionToPerm(dir);
  if (perm & TCE_PCI_WRITE) perm |= TCE_PCI_READ;
  const pageSize = tbl.pageSize;
  // rpn * pageSize (rpn = pa >> it_page_shift): by mask for an integer below 2^32.
  const base = pa >>> 0 === pa && pageSize <= 0x4000_0000 ? pa - (pa & (pageSize - 1)) : Math.floor(pa / pageSize) * pageSize;
  const leaf = leafSlot(ctx, tbl, index - tbl.itOffset, npages);
  if (leaf >= 0) {
    setTces(ctx.mem.pageView(leaf, true)!, leaf & (ctx.mem.pageSize - 1), npages, base + perm, pageSize);
  } else buildWalk(ctx, tbl, index, npages, base + perm);
  return 0;
}

/**
 * pnv_tce_build() entry range by entry range, one walk per leaf level (consecutive entries of a
 * leaf are consecutive slots), levels allocated on demand. Out of line: the common case above
 * stays small enough for V8 to inline into its callers.
 */
function buildWalk(ctx: TceMemory, tbl: IommuTable, index: number, npages: number, first: number): void {
  const pageSize = tbl.pageSize;
  for (let i = 0; i < npages; ) {
    const idx = index - tbl.itOffset + i;
    const slot = pnvTce(ctx, tbl, false, idx, true);
    const run = leafRun(tbl, idx, npages - i);
    if (slot !== null) writeTces(ctx, slot, run, first + i * pageSize, pageSize);
    i += run;
  }
}

/** pnv_tce_xchg(): exchange one TCE, returning the old address and direction. */
export function pnvTceXchg(
  ctx: TceMemory,
  tbl: IommuTable,
  index: number,
  hpa: number,
  dir: DmaDirection,
  out: XchgResult = { ret: 0, hpa: 0, dir: DMA_NONE },
): XchgResult {
  if (hpa - Math.floor(hpa / tbl.pageSize) * tbl.pageSize !== 0) unalignedHpa(hpa);
  const idx = index - tbl.itOffset;
  let slot: number | null = null;
  if (dir === DMA_NONE) {
    slot = pnvTce(ctx, tbl, false, idx, false);
    if (slot === null) return xchgResult(out, 0, 0);
  }
  if (slot === null) {
    slot = pnvTce(ctx, tbl, false, idx, true);
    if (slot === null) return xchgResult(out, -12, 0);
  }
  let newTce = hpa + directionToPerm(dir);
  if (tcePerm(newTce) === TCE_PCI_WRITE) newTce += TCE_PCI_READ;
  const old = ctx.mem.isRam(slot) ? ctx.mem.readU64BE(slot) : 0;
  writeTce(ctx, slot, newTce);
  return xchgResult(out, 0, old);
}

/**
 * The entries from `index` on that share one leaf level (consecutive slots, in the table and in
 * its userspace view, which has the same shape). A flat table past its end gives 1: there the
 * slots land in whatever memory follows, perhaps the other view, entry by entry.
 */
export function pnvTceRunLength(tbl: IommuTable, index: number): number {
  const idx = index - tbl.itOffset;
  if (idx < 0) return 1;
  if (!tbl.itIndirectLevels) return idx < tbl.itSize ? tbl.itSize - idx : 1;
  const levelSize = tbl.itLevelSize;
  return levelSize - (idx - Math.floor(idx / levelSize) * levelSize);
}

/**
 * pnv_tce_xchg() of `count` entries of one leaf (count ≤ pnvTceRunLength): one walk, then the
 * leaf's bytes in hand, a memory page at a time. The old TCEs go to `run.old`.
 */
export function pnvTceXchgRun(ctx: TceMemory, tbl: IommuTable, index: number, count: number, dir: DmaDirection, run: TceRun): number {
  const old = run.old;
  run.ret = 0;
  const slot = pnvTce(ctx, tbl, false, index - tbl.itOffset, dir !== DMA_NONE);
  if (slot === null) {
    // Clearing entries of an absent leaf: nothing was there. Building: a level was not allocated.
    if (dir === DMA_NONE) old.fill(0, 0, count);
    else {
      old[0] = 0;
      run.ret = -12;
      return 1;
    }
    return count;
  }
  const mem = ctx.mem;
  const mask = mem.pageSize - 1;
  let perm = directionToPerm(dir);
  if (perm === TCE_PCI_WRITE) perm += TCE_PCI_READ;
  for (let k = 0; k < count; ) {
    const at = slot + k * 8;
    const n = Math.min(count - k, (mem.pageSize - (at & mask)) / 8);
    // A slot outside RAM reads as 0 and takes no write; a page never written reads as zeros
    // (nothing to read back: a fresh leaf's entries are only written), and zeros into it leave
    // it unwritten.
    const ram = mem.isRam(at);
    const b = ram ? mem.pageView(at, false) : null;
    if (b === null) {
      old.fill(0, k, k + n);
      if (ram && dir !== DMA_NONE) setFresh(mem.pageView(at, true)!, at & mask, run.hpa, k, n, perm, tbl.pageSize);
    } else if (dir === DMA_NONE) xchgClear(b, at & mask, old, k, n);
    else xchgSet(b, at & mask, old, run.hpa, k, n, perm, tbl.pageSize);
    k += n;
  }
  return count;
}

function xchgClear(dv: DataView, off: number, old: Float64Array, k: number, n: number): void {
  for (let j = k; j < k + n; j++, off += 8) {
    old[j] = viewU64BE(dv, off);
    // +0.0 is eight zero bytes: one store.
    dv.setFloat64(off, 0);
  }
}

function xchgSet(dv: DataView, off: number, old: Float64Array, hpas: Float64Array, k: number, n: number, perm: number, pageSize: number): void {
  const inv = 1 / pageSize; // exact: a power of two
  for (let j = k; j < k + n; j++, off += 8) {
    const hpa = hpas[j]!;
    if (Math.floor(hpa * inv) * pageSize !== hpa) unalignedHpa(hpa);
    old[j] = viewU64BE(dv, off);
    viewSetU64BE(dv, off, hpa + perm);
  }
}

/** xchgSet() into a page never written: every old entry is 0, only the new ones are stored. */
function setFresh(dv: DataView, off: number, hpas: Float64Array, k: number, n: number, perm: number, pageSize: number): void {
  const inv = 1 / pageSize; // exact: a power of two
  for (let j = k; j < k + n; j++, off += 8) {
    const hpa = hpas[j]!;
    if (Math.floor(hpa * inv) * pageSize !== hpa) unalignedHpa(hpa);
    viewSetU64BE(dv, off, hpa + perm);
  }
}

function unalignedHpa(hpa: number): never {
  throw new Error(`BUG: pnv_tce_xchg hpa 0x${hpa.toString(16)} not IOMMU-page aligned`);
}

function xchgResult(out: XchgResult, ret: number, old: number): XchgResult {
  out.ret = ret;
  out.hpa = tceAddr(old);
  out.dir = tceDirection(old);
  return out;
}

/** pnv_tce_useraddrptr(): the userspace-view slot of an entry. */
export function pnvTceUseraddrptr(ctx: TceMemory, tbl: IommuTable, index: number, alloc: boolean): number | null {
  if (tbl.itUserspace === null) return null;
  return pnvTce(ctx, tbl, true, index - tbl.itOffset, alloc);
}

/** pnv_tce_free(): zero TCEs, skipping the rest of an absent leaf level. */
export function pnvTceFree(ctx: TceMemory, tbl: IommuTable, index: number, npages: number): void {
  const leaf = leafSlot(ctx, tbl, index - tbl.itOffset, npages);
  if (leaf >= 0) {
    // A page never written reads as zeros already.
    const dv = ctx.mem.pageView(leaf, false);
    if (dv !== null) zeroTces(dv, leaf & (ctx.mem.pageSize - 1), npages);
  } else freeWalk(ctx, tbl, index, npages);
}

/** pnv_tce_free() entry range by entry range, skipping the rest of an absent leaf (out of line, as buildWalk). */
function freeWalk(ctx: TceMemory, tbl: IommuTable, index: number, npages: number): void {
  for (let i = 0; i < npages; i++) {
    const idx = index - tbl.itOffset + i;
    const slot = pnvTce(ctx, tbl, false, idx, false);
    if (slot === null) {
      i = i - (i % tbl.itLevelSize) + tbl.itLevelSize - 1;
      continue;
    }
    // The rest of this leaf is consecutive slots.
    const run = leafRun(tbl, idx, npages - i);
    writeTces(ctx, slot, run, 0, 0);
    i += run - 1;
  }
}

/** pnv_tce_get(). */
export function pnvTceGet(ctx: TceMemory, tbl: IommuTable, index: number): number {
  const slot = pnvTce(ctx, tbl, false, index - tbl.itOffset, false);
  if (slot === null || !ctx.mem.isRam(slot)) return 0;
  return ctx.mem.readU64BE(slot);
}

/** pnv_pci_ioda2_table_free_pages(): free indirect levels (entries with R|W), then the tops. */
export function pnvPciIoda2TableFreePages(ctx: TceMemory, tbl: IommuTable): void {
  if (!tbl.itSize) return;
  const size = tbl.itIndirectLevels ? tbl.itLevelSize : tbl.itSize;
  const mem = ctx.mem;
  const doFree = (pa: number, levels: number) => {
    if (levels) {
      // A page of the level never written holds no entries: it is skipped whole.
      for (let i = 0; i < size; ) {
        const at = pa + i * 8;
        const inPage = Math.min(size - i, (mem.pageSize - (at & (mem.pageSize - 1))) / 8);
        const b = mem.pageData(at);
        for (let k = 0, off = at & (mem.pageSize - 1); b && k < inPage; k++, off += 8) {
          const e = getU64BE(b, off);
          if (e & (TCE_PCI_READ | TCE_PCI_WRITE)) doFree(tceAddr(e), levels - 1);
        }
        i += inPage;
      }
    }
    freeLevel(ctx, tbl, pa);
  };
  doFree(tbl.itBase, tbl.itIndirectLevels);
  if (tbl.itUserspace !== null) doFree(tbl.itUserspace, tbl.itIndirectLevels);
}

/** pnv_pci_ioda2_get_table_size(): bytes VFIO charges, HW table plus userspace view. */
export function pnvPciIoda2GetTableSize(kernelPageShift: number, pageShift: number, windowSize: bigint, levels: number): number {
  if (!levels || levels > POWERNV_IOMMU_MAX_LEVELS || windowSize <= 0n || (windowSize & (windowSize - 1n)) !== 0n) return 0;
  const windowShift = ilog2(windowSize);
  let entriesShift = u32(windowShift - pageShift);
  // 1UL << table_shift: POWER's sld gives 0 for shifts of 64 and more.
  const tableShift = u32(entriesShift + 3);
  let tceTableSize = Math.max(0x1000, tableShift < 64 ? 2 ** tableShift : 0);
  entriesShift = Math.floor(u32(entriesShift + levels - 1) / levels);
  const direct = 2 ** Math.max(u32(entriesShift + 3), kernelPageShift);
  let bytes = 0;
  for (let l = levels; l; l--) {
    bytes += Math.ceil(tceTableSize / direct) * direct;
    tceTableSize = Math.max(Math.floor(tceTableSize / direct) * 8, direct);
  }
  return bytes * 2;
}
