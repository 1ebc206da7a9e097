/**
 * tcelab's IOMMUFD driver for PPC64 table groups (`--iommufd ppc64`), an answer to the open
 * problems of the 2026 RFC:
 *   - the blocked domain is native: attaching it takes the PE's windows down and cannot fail;
 *   - a paging domain owns one TCE table per window: the 32-bit window at the table group's
 *     tce32 range and, when asked for through the PPC64 TCE driver data at HWPT_ALLOC, the
 *     64-bit window at the platform's DDW base (1<<59 on PowerNV); its apertures are both
 *     windows and the hole between them is reserved;
 *   - every PE attached to the domain is programmed (the tables are shared; a TCE update kills
 *     the cached entries of every PE), and only at attach;
 *   - IOMMU_WRITE lets the device write, IOMMU_READ read, and map_pages reports the whole run;
 *   - destroying the domain frees its tables once no PE uses them.
 */
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, type DmaDirection } from '../hw/tce.js';
import { type IommuDomain, type IommuGroup, type IommuOps, IOMMU_CAP_CACHE_COHERENCY, IOMMU_READ, IOMMU_WRITE } from './iommu-group.js';
import { type IommuTable, iommuTceTableGet, iommuTceTablePut } from './iommu-table.js';
import type { TableGroup } from './table-group.js';

/** IOMMU_HWPT_DATA_PPC64_TCE: struct iommu_hwpt_ppc64_tce (see docs/iommufd-ppc64.md). */
export const IOMMU_HWPT_DATA_PPC64_TCE = 3;
/** IOMMU_HW_INFO_TYPE_PPC64_TCE: struct iommu_hw_info_ppc64_tce. */
export const IOMMU_HW_INFO_TYPE_PPC64_TCE = 3;
export const PPC64_TCE_WINDOW_DMA32 = 1 << 0;
export const PPC64_TCE_WINDOW_DDW = 1 << 1;
/** Size of struct iommu_hwpt_ppc64_tce, version 1. */
export const PPC64_TCE_DATA_SIZE = 24;
const HW_INFO_SIZE = 48;

export interface Ppc64Window {
  num: number;
  table: IommuTable;
  start: bigint;
  last: bigint;
  pageShift: number;
}

export interface Ppc64TceDomain extends IommuDomain {
  readonly windows: Ppc64Window[];
  /** Table groups programmed with the windows. */
  readonly groups: TableGroup[];
}

/** Which paging domain's windows a table group carries. */
const programmedBy = new WeakMap<TableGroup, Ppc64TceDomain>();

export function isPpc64TceDomain(d: IommuDomain): d is Ppc64TceDomain {
  return 'windows' in d;
}

/** The bus address of window #1 (the 64-bit DDW) of a table group. */
export type DdwBase = (tg: TableGroup) => bigint;

export interface Ppc64Request {
  windows: number;
  pageShift: number;
  windowSize: bigint;
  levels: number;
}

/** Decode struct iommu_hwpt_ppc64_tce: flags u32, page_shift u32, window_size u64, levels u32, reserved u32. */
export function decodePpc64Data(b: Uint8Array): Ppc64Request | number {
  if (b.length < PPC64_TCE_DATA_SIZE) return -22;
  for (let i = PPC64_TCE_DATA_SIZE; i < b.length; i++) if (b[i]) return -7;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(20, true)) return -95;
  const windows = dv.getUint32(0, true);
  if (windows & ~(PPC64_TCE_WINDOW_DMA32 | PPC64_TCE_WINDOW_DDW) || !windows) return -95;
  return { windows, pageShift: dv.getUint32(4, true), windowSize: dv.getBigUint64(8, true), levels: dv.getUint32(16, true) };
}

export function ppc64TceOps(kernelPageShift: number, ddwBase: DdwBase): IommuOps {
  return {
    capable: (_dev, cap) => cap === IOMMU_CAP_CACHE_COHERENCY,
    domainAllocPaging: (_dev, group) => allocDomain(group.tableGroup, kernelPageShift, ddwBase, null),
    domainAllocUser: (_dev, group, type, data) => {
      if (type !== IOMMU_HWPT_DATA_PPC64_TCE) return -95;
      const req = decodePpc64Data(data);
      if (typeof req === 'number') return req;
      return allocDomain(group.tableGroup, kernelPageShift, ddwBase, req);
    },
    hwInfo: (_dev, group) => ({ type: IOMMU_HW_INFO_TYPE_PPC64_TCE, data: hwInfo(group.tableGroup, ddwBase) }),
  };
}

/** struct iommu_hw_info_ppc64_tce. */
function hwInfo(tg: TableGroup, ddwBase: DdwBase): Uint8Array {
  const b = new Uint8Array(HW_INFO_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 0, true);
  dv.setUint32(4, tg.maxDynamicWindowsSupported, true);
  dv.setBigUint64(8, tg.pgsizes, true);
  dv.setBigUint64(16, BigInt(tg.tce32Start), true);
  dv.setBigUint64(24, BigInt(tg.tce32Size), true);
  dv.setBigUint64(32, ddwBase(tg), true);
  dv.setUint32(40, tg.maxLevels, true);
  return b;
}

function allocDomain(tg: TableGroup, kernelPageShift: number, ddwBase: DdwBase, req: Ppc64Request | null): Ppc64TceDomain | number {
  const want = req?.windows ?? PPC64_TCE_WINDOW_DMA32;
  const specs: { num: number; start: bigint; size: bigint; shift: number; levels: number }[] = [];
  if (want & PPC64_TCE_WINDOW_DMA32) specs.push({ num: 0, start: BigInt(tg.tce32Start), size: BigInt(tg.tce32Size), shift: kernelPageShift, levels: 1 });
  if (want & PPC64_TCE_WINDOW_DDW) {
    if (!req || tg.maxDynamicWindowsSupported < 1) return -95;
    if (!(tg.pgsizes & (1n << BigInt(req.pageShift))) || req.pageShift > kernelPageShift) return -22;
    if (req.levels < 1 || req.levels > tg.maxLevels) return -22;
    if (req.windowSize & (req.windowSize - 1n) || req.windowSize < 1n << BigInt(req.pageShift)) return -22;
    specs.push({ num: 1, start: ddwBase(tg), size: req.windowSize, shift: req.pageShift, levels: req.levels });
  }
  const windows: Ppc64Window[] = [];
  for (const s of specs) {
    const t = tg.ops.createTable(tg, s.num, s.shift, s.size, s.levels);
    if (typeof t === 'number') {
      for (const w of windows) iommuTceTablePut(w.table);
      return t;
    }
    windows.push({ num: s.num, table: t, start: s.start, last: s.start + s.size - 1n, pageShift: s.shift });
  }
  return newDomain(tg, windows);
}

/**
 * A paging domain with no window yet, for a caller that sets its windows one by one (the sPAPR
 * container over IOMMUFD): its page sizes are 4K until a window says otherwise.
 */
export function ppc64EmptyDomain(tg: TableGroup): Ppc64TceDomain {
  return newDomain(tg, []);
}

function newDomain(tg: TableGroup, windows: Ppc64Window[]): Ppc64TceDomain {
  const domain: Ppc64TceDomain = {
    type: 'paging',
    label: `${tg.label} ppc64`,
    pgsizeBitmap: 0n,
    geometry: { apertureStart: 0n, apertureEnd: 0n, forceAperture: true },
    apertures: [],
    windows,
    groups: [],
    ops: {
      attachDev: (d, _dev, g) => attach(d as Ppc64TceDomain, g),
      mapPages: (d, iova, paddr, pgsize, pgcount, prot) => mapPages(d as Ppc64TceDomain, iova, paddr, pgsize, pgcount, prot),
      unmapPages: (d, iova, pgsize, pgcount) => unmapPages(d as Ppc64TceDomain, iova, pgsize, pgcount),
      iovaToPhys: (d, iova) => {
        const w = windowOf(d as Ppc64TceDomain, iova);
        if (!w) return 0n;
        const tce = w.table.ops.get(w.table, Number(iova >> BigInt(w.pageShift)));
        return BigInt(tce - (tce % w.table.pageSize)) + (iova % BigInt(w.table.pageSize));
      },
      free: (d) => {
        for (const w of (d as Ppc64TceDomain).windows) iommuTceTablePut(w.table);
      },
    },
  };
  updateGeometry(domain);
  return domain;
}

/** Apertures, geometry and page sizes from the windows (both windows; the hole is not one). */
function updateGeometry(d: Ppc64TceDomain): void {
  const ws = [...d.windows].sort((a, b) => (a.start < b.start ? -1 : 1));
  let bitmap = 0n;
  for (const w of ws) bitmap |= 1n << BigInt(w.pageShift);
  d.pgsizeBitmap = bitmap || 1n << 12n;
  d.apertures = ws.map((w) => ({ start: w.start, last: w.last }));
  d.geometry = { apertureStart: ws[0]?.start ?? 0n, apertureEnd: ws.at(-1)?.last ?? 0n, forceAperture: true };
}

/**
 * Give the domain a window over `table` (the caller keeps its own reference) and program it into
 * every PE attached to the domain; on a failure no PE keeps it.
 */
export function ppc64DomainSetWindow(d: Ppc64TceDomain, num: number, table: IommuTable, pageShift: number): number {
  const done: TableGroup[] = [];
  for (const tg of d.groups) {
    iommuTceTableGet(table);
    const rc = tg.ops.setWindow(tg, num, table);
    if (rc) {
      iommuTceTablePut(table);
      for (const x of done) unprogram(x, num);
      return rc;
    }
    done.push(tg);
  }
  iommuTceTableGet(table);
  const start = table.start;
  d.windows.push({ num, table, start, last: start + BigInt(table.itSize) * BigInt(table.pageSize) - 1n, pageShift });
  updateGeometry(d);
  return 0;
}

/** Take window `num` out of every PE attached to the domain, and out of the domain. */
export function ppc64DomainUnsetWindow(d: Ppc64TceDomain, num: number): void {
  const i = d.windows.findIndex((w) => w.num === num);
  if (i < 0) return;
  for (const tg of d.groups) unprogram(tg, num);
  iommuTceTablePut(d.windows[i]!.table);
  d.windows.splice(i, 1);
  updateGeometry(d);
}

/** Program every window of the domain into the group's PE (set_window, with a reference each). */
function attach(d: Ppc64TceDomain, g: IommuGroup): number {
  const tg = g.tableGroup;
  if (programmedBy.get(tg) === d) return 0;
  // Replacing another domain, or coming from the platform domain: its windows go first.
  const rc = ppc64BlockPe(tg);
  if (rc) return rc;
  const done: Ppc64Window[] = [];
  for (const w of d.windows) {
    iommuTceTableGet(w.table);
    const r = tg.ops.setWindow(tg, w.num, w.table);
    if (r) {
      iommuTceTablePut(w.table);
      for (const x of done) unprogram(tg, x.num);
      return r;
    }
    done.push(w);
  }
  // Newest first (list_add): a new window reaches the PEs in the order the sPAPR container uses.
  d.groups.unshift(tg);
  programmedBy.set(tg, d);
  return 0;
}

function unprogram(tg: TableGroup, num: number): void {
  const tbl = tg.tables[num];
  if (!tbl) return;
  tg.ops.unsetWindow(tg, num);
  iommuTceTablePut(tbl);
}

/**
 * The native blocked domain's attach: a PE leaving a ppc64 paging domain loses its windows; one
 * leaving the platform domain loses the kernel's window and bypass (take_ownership()).
 */
export function ppc64BlockPe(tg: TableGroup): number {
  const d = programmedBy.get(tg);
  if (d) {
    for (const w of d.windows) unprogram(tg, w.num);
    d.groups.splice(d.groups.indexOf(tg), 1);
    programmedBy.delete(tg);
  }
  return tg.ops.takeOwnership(tg, '');
}

function windowOf(d: Ppc64TceDomain, iova: bigint): Ppc64Window | undefined {
  return d.windows.find((w) => iova >= w.start && iova <= w.last);
}

function mapPages(d: Ppc64TceDomain, iova: bigint, paddr: bigint, pgsize: bigint, pgcount: number, prot: number) {
  const size = pgsize * BigInt(pgcount);
  const w = windowOf(d, iova);
  if (!w || iova + size - 1n > w.last) return { ret: -22, mapped: 0n };
  const tps = BigInt(w.table.pageSize);
  if (pgsize < tps || (iova | paddr) % tps) return { ret: -22, mapped: 0n };
  let dir: DmaDirection = DMA_BIDIRECTIONAL;
  if (!(prot & IOMMU_WRITE)) dir = DMA_TO_DEVICE;
  if (!(prot & IOMMU_READ)) dir = DMA_FROM_DEVICE;
  const n = Number(size / tps);
  const ret = w.table.ops.set(w.table, Number(iova >> BigInt(w.pageShift)), n, Number(paddr), dir);
  return ret ? { ret: -12, mapped: 0n } : { ret: 0, mapped: size };
}

function unmapPages(d: Ppc64TceDomain, iova: bigint, pgsize: bigint, pgcount: number): bigint {
  const size = pgsize * BigInt(pgcount);
  const w = windowOf(d, iova);
  if (!w) return 0n;
  const tps = BigInt(w.table.pageSize);
  w.table.ops.clear(w.table, Number(iova >> BigInt(w.pageShift)), Number(size / tps));
  return size;
}
