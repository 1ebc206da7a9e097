/**
 * The guest's RTAS dynamic-DMA-window calls (pseries/iommu.c query_ddw(), create_ddw(),
 * remove_dma_window(), reset_dma_window()) with the log lines the kernel prints, and the page
 * size choice of iommu_get_page_shift().
 */
import { type PaprHypervisor, RTAS_SUCCESS } from '../../firmware/papr/hypervisor.js';
import type { KPciDev } from '../pci.js';
import type { KernelLog } from '../printk.js';
import { PseriesPe } from './pe.js';

export interface DdwContext {
  hv: PaprHypervisor;
  klog: KernelLog;
}

export interface DdwQuery {
  ret: number;
  windowsAvailable: number;
  largestBlock: bigint;
  pageSize: number;
}

const hex = (n: number | bigint) => n.toString(16);
const buidHi = (pe: PseriesPe) => Number(pe.phb.buid >> 32n);
const buidLo = (pe: PseriesPe) => Number(pe.phb.buid & 0xffffffffn);

/** The driver name dev_info() prints ("pci" while no driver is bound). */
export function devPrefix(d: KPciDev, driver?: string): string {
  return `${driver ?? (d.driver === 'vfio-pci' ? 'vfio-pci' : 'pci')} ${d.name}`;
}

/** query_ddw(): the 6-output form when ibm,ddw-extensions says so. */
export function queryDdw(ctx: DdwContext, pe: PseriesPe, d: KPciDev, driver?: string): DdwQuery {
  const cfg = PseriesPe.cfgAddr(d);
  const q = ctx.hv.queryPeDmaWindow(cfg, buidHi(pe), buidLo(pe));
  ctx.klog.printk(
    `${devPrefix(d, driver)}: ibm,query-pe-dma-windows(${hex(pe.ddwApplicable![0])}) ${hex(cfg)} ${hex(buidHi(pe))} ${hex(buidLo(pe))} returned ${q.status}, lb=${hex(q.largestBlock)} ps=${hex(q.pageMask)} wn=${q.windowsAvailable}`,
  );
  return { ret: q.status, windowsAvailable: q.windowsAvailable, largestBlock: q.largestBlock, pageSize: q.pageMask };
}

/** create_ddw(): returns the RTAS status, the LIOBN and the window's bus address. */
export function createDdw(ctx: DdwContext, pe: PseriesPe, d: KPciDev, pageShift: number, windowShift: number, driver?: string) {
  const cfg = PseriesPe.cfgAddr(d);
  const c = ctx.hv.createPeDmaWindow(cfg, buidHi(pe), buidLo(pe), pageShift, windowShift);
  ctx.klog.printk(
    `${devPrefix(d, driver)}: ibm,create-pe-dma-window(${hex(pe.ddwApplicable![1])}) ${hex(cfg)} ${hex(buidHi(pe))} ${hex(buidLo(pe))} ${hex(pageShift)} ${hex(windowShift)} returned ${c.status} (liobn = 0x${hex(c.liobn)} starting addr = ${hex(c.addrHi)} ${hex(c.addrLo)})`,
  );
  return { ret: c.status, liobn: c.liobn, start: (BigInt(c.addrHi) << 32n) | BigInt(c.addrLo) };
}

/** remove_dma_window(): RTAS remove of one LIOBN; a failure is only reported. */
export function removeDmaWindow(ctx: DdwContext, pe: PseriesPe, liobn: number): void {
  const rc = ctx.hv.removePeDmaWindow(liobn);
  if (rc !== RTAS_SUCCESS) {
    ctx.klog.printk(`${pe.node}: failed to remove DMA window: rtas returned ${rc} to ibm,remove-pe-dma-window(${hex(pe.ddwApplicable![2])}) ${hex(liobn)}`);
  }
}

/** reset_dma_window(): ibm,reset-pe-dma-window, from ibm,ddw-extensions. */
export function resetDmaWindow(ctx: DdwContext, pe: PseriesPe, d: KPciDev): number {
  const ext = pe.ddwExtensions;
  if (!ext || ext[0]! < 1) return -22;
  const rc = ctx.hv.resetPeDmaWindow(PseriesPe.cfgAddr(d), buidHi(pe), buidLo(pe));
  if (rc)
    ctx.klog.printk(
      `${devPrefix(d)}: ibm,reset-pe-dma-window(${hex(ext[1]!)}) ${hex(PseriesPe.cfgAddr(d))} ${hex(buidHi(pe))} ${hex(buidLo(pe))} returned ${rc}`,
    );
  return rc;
}

/** LoPAR query page-size bits, largest first, as iommu_get_page_shift() tries them. */
const QUERY_SHIFTS: [number, number][] = [
  [0x80, 34],
  [0x40, 28],
  [0x20, 27],
  [0x10, 26],
  [0x08, 25],
  [0x04, 24],
  [0x100, 21],
  [0x02, 16],
  [0x01, 12],
];

/** iommu_get_page_shift(): the largest IOMMU page the hypervisor offers (0 if none). */
export function iommuGetPageShift(mask: number): number {
  return QUERY_SHIFTS.find(([bit]) => mask & bit)?.[1] ?? 0;
}

/** query_page_size_to_mask(): query bits → a byte bitmap of page sizes. */
export function queryPageSizeToMask(mask: number): bigint {
  return QUERY_SHIFTS.reduce((m, [bit, shift]) => (mask & bit ? m | (1n << BigInt(shift)) : m), 0n);
}
