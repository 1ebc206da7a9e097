/**
 * The DMA API of a powerpc PCI device: dma_map_page / dma_map_sg / dma_alloc_coherent through
 * the device's iommu_table (arch/powerpc/kernel/dma-iommu.c → iommu_map_page, ppc_iommu_map_sg,
 * iommu_alloc_coherent in arch/powerpc/kernel/iommu.c), or straight to memory when the platform
 * granted a bypass for the device's mask (dev->dma_ops_bypass → kernel/dma/direct.c).
 *
 * Physical addresses are numbers (the kernel's linear-map address minus PAGE_OFFSET), bus
 * addresses bigint. Every mapping made reports a kernel 'dma-map' event (npages = TCEs written,
 * 0 on the direct path) and every mapping torn down a 'dma-unmap'; the dev_info / printk lines
 * of the failure paths are reported as 'printk' events, with %p values printed as model
 * identities ("tbl #3").
 */
import { hex, ilog2n, shlToBig, shrToNum } from '../base/bits.js';
import { neg } from '../base/errno.js';
import type { EventLog } from '../base/events.js';
import { u64ToNum } from '../base/u64.js';
import { DMA_BIDIRECTIONAL, DMA_NONE, type DmaDirection } from '../hw/tce.js';
import { iommuAlloc, iommuAllocEntry, iommuFree, iommuFreeEntry, iommuPageSize, iommuRangeAlloc, offsetIn } from './iommu.js';
import type { IommuTable } from './iommu-table.js';

/** IOMAP_MAX_ORDER: iommu_alloc_coherent refuses get_order(size) at or above it. */
export const IOMAP_MAX_ORDER = 13;
/** The max_seg_size pci_device_add() gives every PCI device (dma_set_max_seg_size 64 KiB). */
export const PCI_DMA_MAX_SEG_SIZE = 65536;
/** The segment boundary pci_device_add() gives every PCI device (dma_set_seg_boundary). */
export const PCI_DMA_SEG_BOUNDARY = 0xffffffffn;
/** PAGE_OFFSET of ppc64 (book3s64): kernel linear-map addresses as the kernel prints them. */
const PAGE_OFFSET = 0xc000000000000000n;

/** The parts of struct device the DMA API reads. */
export interface DmaDevice {
  readonly name: string;
  /** *dev->dma_mask (also used as coherent_dma_mask). */
  dmaMask: bigint;
  /** get_iommu_table_base(dev), set by set_iommu_table_base(); null when none (or dangling). */
  table: IommuTable | null;
  /** archdata.dma_offset: added to a physical address on the direct path. */
  dmaOffset: bigint;
  /** dev->dma_ops_bypass: the platform's iommu_bypass_supported() said yes for dmaMask. */
  bypass: boolean;
  /** dma_get_max_seg_size(dev); PCI_DMA_MAX_SEG_SIZE for a PCI device. */
  maxSegSize: number;
  /** dma_get_seg_boundary(dev); PCI_DMA_SEG_BOUNDARY for a PCI device. */
  segBoundaryMask: bigint;
  /**
   * dmaMask >> shift and dma_get_seg_boundary_nr_pages(dev, shift), from a device that keeps
   * them until its masks change (KPciDev): then a map shifts and compares no bigints.
   */
  maskPages?(shift: number): number;
  boundaryPages?(shift: number): number;
}

/** One scatterlist element as the driver fills it: sg_phys(sg) and sg->length. */
export interface SgSegment {
  pa: number;
  len: number;
}

/** The DMA side of one scatterlist element: sg_dma_address(sg) and sg_dma_len(sg). */
export interface SgDma {
  dmaAddress: bigint;
  dmaLength: number;
}

/** What dma_map_sg leaves behind: its return value and the DMA side of every element. */
export interface SgMapping {
  /** The number of DMA segments (merged elements), or -errno (-EINVAL, -EIO). */
  ret: number;
  /** One entry per input element; the first `ret` hold the DMA segments. */
  sg: SgDma[];
}

/** A coherent buffer: its physical address (the kernel's returned vaddr) and its DMA handle. */
export interface CoherentBuffer {
  pa: number;
  dma: bigint;
}

/** The page allocator behind the coherent paths (alloc_pages_node / free_pages). */
export interface CoherentPages {
  alloc(order: number): number | null;
  free(pa: number, order: number): void;
}

/** iommu_num_pages(addr, len, io_page_size): IOMMU pages touched by [addr, addr + len). */
export function iommuNumPages(addr: number | bigint, len: number, ioPageSize: number): number {
  // A bigint converts when it is in [0, 2^53) (u64ToNum gives -1 otherwise).
  const n = typeof addr === 'bigint' ? u64ToNum(addr) : addr;
  const offset = typeof addr === 'bigint' && n < 0 ? Number(addr % BigInt(ioPageSize)) : offsetIn(n, ioPageSize);
  return Math.ceil((offset + len) / ioPageSize);
}

/**
 * get_order(size) with PAGE_SHIFT = shift, which is also get_iommu_order(size, tbl) with
 * shift = it_page_shift: the smallest order with size ≤ 2^(order + shift). Size 0 gives
 * 64 - shift (the kernel's `size - 1` wraps).
 */
export function getOrder(size: number, shift: number): number {
  if (size === 0) return 64 - shift;
  const pages = Math.floor((size - 1) / 2 ** shift);
  return pages === 0 ? 0 : ilog2n(pages) + 1;
}

/** dma_get_seg_boundary_nr_pages(dev, page_shift): the segment boundary in IOMMU pages. */
export function dmaGetSegBoundaryNrPages(dev: DmaDevice, pageShift: number): number {
  return dev.boundaryPages ? dev.boundaryPages(pageShift) : boundaryPages.of(dev.segBoundaryMask, pageShift) + 1;
}

/** The DMA mask in absolute entries (`mask >> it_page_shift`), exact for page shifts ≥ 12. */
function maskEntries(dev: DmaDevice, tbl: IommuTable): number {
  return dev.maskPages ? dev.maskPages(tbl.itPageShift) : maskPages.of(dev.dmaMask, tbl.itPageShift);
}

/** Number(mask >> shift) for the last mask and shift asked: every map asks for the same ones. */
class ShiftedMask {
  private mask = -1n;
  private shift = -1;
  private value = 0;

  of(mask: bigint, shift: number): number {
    if (mask !== this.mask || shift !== this.shift) {
      this.mask = mask;
      this.shift = shift;
      this.value = Number(mask >> BigInt(shift));
    }
    return this.value;
  }
}
const boundaryPages = new ShiftedMask();
const maskPages = new ShiftedMask();

/**
 * The align_order iommu_map_page and ppc_iommu_map_sg ask for: a mapping of at least a CPU page
 * that starts on a CPU page is aligned to a CPU page when IOMMU pages are smaller.
 */
function cpuPageAlignOrder(tbl: IommuTable, pa: number, size: number, kernelPageShift: number): number {
  const pageSize = 1 << kernelPageShift;
  return tbl.itPageShift < kernelPageShift && size >= pageSize && pa % pageSize === 0 ? kernelPageShift - tbl.itPageShift : 0;
}

function bugOnDmaNone(fn: string, dir: DmaDirection): void {
  if (dir === DMA_NONE) throw new Error(`BUG: ${fn} with DMA_NONE`);
}

function printk(log: EventLog, text: string): void {
  log.emit({ layer: 'kernel', kind: 'printk', text });
}

function allocFailed(log: EventLog, dev: DmaDevice, tbl: IommuTable, pa: number, npages: number): void {
  printk(log, `${dev.name}: iommu_alloc failed, tbl #${tbl.id} vaddr ${hex(PAGE_OFFSET + BigInt(pa))} npages ${npages}`);
}

/** iommu_free(): __iommu_free plus the lines iommu_free_check() prints for a range outside the window. */
function iommuFreeLogged(log: EventLog, tbl: IommuTable, dma: bigint, npages: number, entry = shrToNum(dma, tbl.itPageShift)): boolean {
  return iommuFreeEntry(tbl, entry, npages) || invalidFree(log, tbl, dma);
}

/** iommu_free_check()'s lines for a range outside the window (out of line: the free stays small). */
function invalidFree(log: EventLog, tbl: IommuTable, dma: bigint): false {
  printk(log, 'iommu_free: invalid entry');
  printk(log, `\tentry     = 0x${hex(dma >> BigInt(tbl.itPageShift))}`);
  printk(log, `\tdma_addr  = 0x${hex(dma)}`);
  printk(log, `\tsize      = 0x${hex(tbl.itSize)}`);
  printk(log, `\tstartOff  = 0x${hex(tbl.itOffset)}`);
  printk(log, `\tindex     = 0x${hex(tbl.itIndex)}`);
  return false;
}

/** The dma-map and dma-unmap counters of the last log that counted (every map uses the same log). */
const counted: { log: EventLog | null; map: { n: number }; unmap: { n: number } } = { log: null, map: { n: 0 }, unmap: { n: 0 } };

function countersOf(log: EventLog): typeof counted {
  if (counted.log !== log) {
    counted.log = log;
    counted.map = log.counter('kernel', 'dma-map');
    counted.unmap = log.counter('kernel', 'dma-unmap');
  }
  return counted;
}

// One event per map and unmap: the body is built only for a listener.
function emitMap(log: EventLog, dev: DmaDevice, dma: bigint, npages: number): void {
  if (log.listening) log.emit({ layer: 'kernel', kind: 'dma-map', device: dev.name, dma, npages });
  else countersOf(log).map.n++;
}

function emitUnmap(log: EventLog, dev: DmaDevice, dma: bigint, npages: number): void {
  if (log.listening) log.emit({ layer: 'kernel', kind: 'dma-unmap', device: dev.name, dma, npages });
  else countersOf(log).unmap.n++;
}

/**
 * dma_map_page_attrs() → iommu_map_page(): map [pa, pa + size) through the device's table and
 * return the bus address of pa (the entry's address | pa's offset in its IOMMU page), or null
 * (DMA_MAPPING_ERROR): no table, or no space under the mask. On the direct path the bus
 * address is pa + dma_offset.
 */
export function dmaMapPage(dev: DmaDevice, pa: number, size: number, dir: DmaDirection, kernelPageShift: number, cpu: number, log: EventLog): bigint | null {
  bugOnDmaNone('iommu_map_page', dir);
  if (dev.bypass) {
    const dma = BigInt(pa) + dev.dmaOffset;
    emitMap(log, dev, dma, 0);
    return dma;
  }
  const tbl = dev.table;
  if (!tbl) return null;
  const pageSize = iommuPageSize(tbl);
  const npages = iommuNumPages(pa, size, pageSize);
  const align = cpuPageAlignOrder(tbl, pa, size, kernelPageShift);
  const boundary = dmaGetSegBoundaryNrPages(dev, tbl.itPageShift);
  const entry = iommuAllocEntry(tbl, pa, npages, dir, maskEntries(dev, tbl), align, cpu, boundary);
  if (entry === -1) {
    allocFailed(log, dev, tbl, pa, npages);
    return null;
  }
  // The entry's bus address | pa's offset in its IOMMU page, made a bigint once (BigInt() of an
  // integer below 2^53 is exact, and optimized code makes it without a runtime call).
  const busPage = entry * pageSize;
  const off = offsetIn(pa, pageSize);
  const dma = busPage + pageSize <= 2 ** 53 ? BigInt(busPage + off) : shlToBig(entry, tbl.itPageShift) | BigInt(off);
  emitMap(log, dev, dma, npages);
  return dma;
}

/** dma_unmap_page_attrs() → iommu_unmap_page(): free the entries of [dma, dma + size). */
export function dmaUnmapPage(dev: DmaDevice, dma: bigint, size: number, dir: DmaDirection, log: EventLog): void {
  bugOnDmaNone('iommu_unmap_page', dir);
  if (dev.bypass) {
    emitUnmap(log, dev, dma, 0);
    return;
  }
  const tbl = dev.table;
  if (!tbl) return;
  const pageSize = iommuPageSize(tbl);
  // One conversion of the bus address, when it is in [0, 2^53).
  const n = u64ToNum(dma);
  if (n < 0) {
    unmapWide(dev, tbl, dma, size, log);
    return;
  }
  const npages = iommuNumPages(n, size, pageSize);
  if (iommuFreeLogged(log, tbl, dma, npages, Math.floor(n / pageSize))) emitUnmap(log, dev, dma, npages);
}

/** dmaUnmapPage() of a bus address at or past 2^53 (out of line: DMA API windows sit lower). */
function unmapWide(dev: DmaDevice, tbl: IommuTable, dma: bigint, size: number, log: EventLog): void {
  const npages = iommuNumPages(dma, size, iommuPageSize(tbl));
  if (iommuFreeLogged(log, tbl, dma, npages)) emitUnmap(log, dev, dma, npages);
}

/**
 * dma_map_sg_attrs() → ppc_iommu_map_sg(): map every element, chaining the search through a
 * handle so consecutive elements land next to each other, and merge an element into the
 * current DMA segment when vmerge is on (no `iommu=novmerge`), its bus address is the previous
 * element's end and the merged length stays ≤ max_seg_size. A zero-length element is skipped
 * and breaks merging (a leading one leaves DMA segment 0 empty, as in the kernel). Failure frees
 * what was built and returns -EIO; no table returns -EINVAL. dma_map_sg() turns a negative
 * return into 0.
 */
export function dmaMapSg(
  dev: DmaDevice,
  segs: SgSegment[],
  dir: DmaDirection,
  vmerge: boolean,
  kernelPageShift: number,
  cpu: number,
  log: EventLog,
): SgMapping {
  bugOnDmaNone('ppc_iommu_map_sg', dir);
  const sg: SgDma[] = segs.map(() => ({ dmaAddress: 0n, dmaLength: 0 }));
  if (dev.bypass) return dmaDirectMapSg(dev, segs, sg, log);
  const tbl = dev.table;
  if (segs.length === 0 || !tbl) return { ret: neg('EINVAL'), sg };

  const mask = maskEntries(dev, tbl);
  const boundary = dmaGetSegBoundaryNrPages(dev, tbl.itPageShift);
  const pageSize = iommuPageSize(tbl);
  const shift = BigInt(tbl.itPageShift);
  const handle = { value: 0 };
  let outs = 0;
  let segstart = 0;
  let outcount = 1;
  let dmaNext = 0n;

  for (let i = 0; i < segs.length; i++) {
    const { pa, len } = segs[i]!;
    if (len === 0) {
      dmaNext = 0n;
      continue;
    }
    const npages = iommuNumPages(pa, len, pageSize);
    const align = cpuPageAlignOrder(tbl, pa, len, kernelPageShift);
    const n = iommuRangeAlloc(tbl, npages, handle, mask, align, cpu, boundary);
    if (n === -1) {
      allocFailed(log, dev, tbl, pa, npages);
      return ppcIommuMapSgFailure(tbl, sg, outs);
    }
    const entry = n + tbl.itOffset;
    const dmaAddr = (BigInt(entry) << shift) | BigInt(pa % pageSize);
    // A failing set leaks this element's range: it is in no DMA segment yet (as in the kernel).
    if (tbl.ops.set(tbl, entry, npages, pa - (pa % pageSize), dir) !== 0) return ppcIommuMapSgFailure(tbl, sg, outs);

    if (segstart !== i) {
      const out = sg[outs]!;
      if (!vmerge || dmaAddr !== dmaNext || out.dmaLength + len > dev.maxSegSize) {
        segstart = i;
        outcount++;
        outs++;
      } else {
        out.dmaLength += len;
      }
    }
    if (segstart === i) sg[outs] = { dmaAddress: dmaAddr, dmaLength: len };
    dmaNext = dmaAddr + BigInt(len);
  }

  // For ppc_iommu_unmap_sg: the element after the last DMA segment gets dma_length 0.
  if (outcount < segs.length) sg[outs + 1]!.dmaLength = 0;
  for (let i = 0; i < outcount; i++) {
    const s = sg[i]!;
    if (s.dmaLength !== 0) emitMap(log, dev, s.dmaAddress, iommuNumPages(s.dmaAddress, s.dmaLength, pageSize));
  }
  return { ret: outcount, sg };
}

/** The `failure:` path of ppc_iommu_map_sg: free the DMA segments up to `outs`, return -EIO. */
function ppcIommuMapSgFailure(tbl: IommuTable, sg: SgDma[], outs: number): SgMapping {
  const pageSize = iommuPageSize(tbl);
  for (let i = 0; i <= outs; i++) {
    const s = sg[i]!;
    if (s.dmaLength !== 0) {
      const base = s.dmaAddress - (s.dmaAddress % BigInt(pageSize));
      iommuFree(tbl, base, iommuNumPages(s.dmaAddress, s.dmaLength, pageSize));
      s.dmaLength = 0;
    }
  }
  return { ret: neg('EIO'), sg };
}

/** dma_direct_map_sg(): every element maps to pa + dma_offset, no merging. */
function dmaDirectMapSg(dev: DmaDevice, segs: SgSegment[], sg: SgDma[], log: EventLog): SgMapping {
  segs.forEach((s, i) => {
    const dma = BigInt(s.pa) + dev.dmaOffset;
    sg[i] = { dmaAddress: dma, dmaLength: s.len };
    emitMap(log, dev, dma, 0);
  });
  return { ret: segs.length, sg };
}

/**
 * dma_unmap_sg_attrs() → ppc_iommu_unmap_sg(): free each DMA segment of a mapping made by
 * dmaMapSg, stopping at the first with dma_length 0.
 */
export function dmaUnmapSg(dev: DmaDevice, sg: SgDma[], dir: DmaDirection, log: EventLog): void {
  bugOnDmaNone('ppc_iommu_unmap_sg', dir);
  if (dev.bypass) {
    for (const s of sg) emitUnmap(log, dev, s.dmaAddress, 0);
    return;
  }
  const tbl = dev.table;
  if (!tbl) return;
  for (const s of sg) {
    if (s.dmaLength === 0) break;
    const npages = iommuNumPages(s.dmaAddress, s.dmaLength, iommuPageSize(tbl));
    if (iommuFreeLogged(log, tbl, s.dmaAddress, npages)) emitUnmap(log, dev, s.dmaAddress, npages);
  }
}

/**
 * dma_alloc_coherent() → iommu_alloc_coherent(): allocate 2^get_order(size) zeroed CPU pages
 * and map them DMA_BIDIRECTIONAL, the IOMMU range naturally aligned to its size
 * (get_iommu_order). Orders ≥ IOMAP_MAX_ORDER are refused before anything else; no table, no
 * pages or no space return null. On the direct path the handle is pa + dma_offset.
 */
export function dmaAllocCoherent(
  dev: DmaDevice,
  size: number,
  pages: CoherentPages,
  kernelPageShift: number,
  cpu: number,
  log: EventLog,
): CoherentBuffer | null {
  const pageSize = 1 << kernelPageShift;
  const alignedSize = Math.ceil(size / pageSize) * pageSize;
  const order = getOrder(alignedSize, kernelPageShift);
  if (dev.bypass) {
    const pa = pages.alloc(order);
    if (pa === null) return null;
    const dma = BigInt(pa) + dev.dmaOffset;
    emitMap(log, dev, dma, 0);
    return { pa, dma };
  }
  if (order >= IOMAP_MAX_ORDER) {
    printk(log, `${dev.name}: iommu_alloc_consistent size too large: 0x${hex(alignedSize)}`);
    return null;
  }
  const tbl = dev.table;
  if (!tbl) return null;
  const pa = pages.alloc(order);
  if (pa === null) return null;
  const tcePageSize = iommuPageSize(tbl);
  const nioPages = Math.ceil(alignedSize / tcePageSize);
  const ioOrder = getOrder(alignedSize, tbl.itPageShift);
  const boundary = dmaGetSegBoundaryNrPages(dev, tbl.itPageShift);
  const mapping = iommuAlloc(tbl, pa, nioPages, DMA_BIDIRECTIONAL, maskEntries(dev, tbl), ioOrder, cpu, boundary);
  if (mapping === null) {
    pages.free(pa, order);
    return null;
  }
  const dma = mapping | BigInt(pa % tcePageSize);
  emitMap(log, dev, dma, nioPages);
  return { pa, dma };
}

/**
 * dma_free_coherent() → iommu_free_coherent(): unmap and free a buffer from dmaAllocCoherent.
 * Without a table nothing happens: the pages stay allocated, as in the kernel.
 */
export function dmaFreeCoherent(dev: DmaDevice, size: number, buf: CoherentBuffer, pages: CoherentPages, kernelPageShift: number, log: EventLog): void {
  const pageSize = 1 << kernelPageShift;
  const alignedSize = Math.ceil(size / pageSize) * pageSize;
  const order = getOrder(alignedSize, kernelPageShift);
  if (dev.bypass) {
    emitUnmap(log, dev, buf.dma, 0);
    pages.free(buf.pa, order);
    return;
  }
  const tbl = dev.table;
  if (!tbl) return;
  const nioPages = Math.ceil(alignedSize / iommuPageSize(tbl));
  if (iommuFreeLogged(log, tbl, buf.dma, nioPages)) emitUnmap(log, dev, buf.dma, nioPages);
  pages.free(buf.pa, order);
}
