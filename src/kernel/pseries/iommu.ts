/**
 * pSeries LPAR DMA (platforms/pseries/iommu.c): the per-PE default table over the hypervisor's
 * window, the boot-time enable_ddw() of a driver asking for 64-bit DMA, and the table-group ops
 * Linux 6.9+ gives VFIO (spapr_tce_create_table, set/unset_window, take/release_ownership,
 * get_table_size). Windows belong to the hypervisor: creating a table creates the window.
 */
import { errno } from '../../base/errno.js';
import type { EventLog } from '../../base/events.js';
import { H_SUCCESS, type PaprHypervisor, SPAPR_TCE_LIST_MAX } from '../../firmware/papr/hypervisor.js';
import type { PhysMemory } from '../../hw/memory.js';
import { iommuInitTable } from '../iommu.js';
import { IommuTable, iommuTceTableGet, iommuTceTablePut } from '../iommu-table.js';
import type { KPciDev } from '../pci.js';
import type { KernelLog } from '../printk.js';
import type { Quirks } from '../quirks.js';
import type { TableGroup, TableGroupOps } from '../table-group.js';
import { createDdw, type DdwContext, devPrefix, iommuGetPageShift, queryDdw, queryPageSizeToMask, removeDmaWindow, resetDmaWindow } from './ddw.js';
import { type LparTableOps, lparTceOps } from './lpar-tce.js';
import type { DdwProp, PseriesPe } from './pe.js';

const { EINVAL, EIO, ENODEV, EPERM } = errno;
const IOMMU_PAGE_SHIFT_4K = 12;
const DEFAULT_WINDOW = 'ibm,dma-window';
const DIRECT64 = 'linux,direct64-ddr-window-info';
const DMA64 = 'linux,dma64-ddr-window-info';

export interface PseriesIommuContext {
  hv: PaprHypervisor;
  mem: PhysMemory;
  klog: KernelLog;
  log: EventLog;
  quirks: Quirks;
  /** ddw_memory_hotplug_max(): the top of hot-pluggable memory as the guest finds it. */
  memoryHotplugMax: bigint;
  /** The task making the current call (vmalloc reports name it). */
  current(): { pid: number; uid: number; comm: string };
  /** The machine's next iommu_table id. */
  newTableId?: () => number;
  /** The guest kernel's disable_ddw option: drivers get no DDW (iommu_bypass_supported unset). */
  disableDdw?: boolean;
}

/** order_base_2(): 0 for 0 and 1. */
function orderBase2(n: bigint): number {
  return n > 1n ? (n - 1n).toString(2).length : 0;
}

export class PseriesIommu implements TableGroupOps {
  readonly tableOps: LparTableOps;
  /** failed_ddw_pdn_list: PEs whose DDW setup failed; never cleared. */
  readonly failedDdw = new Set<PseriesPe>();
  private readonly ddwCtx: DdwContext;

  constructor(private readonly ctx: PseriesIommuContext) {
    this.tableOps = lparTceOps({ hv: ctx.hv, mem: ctx.mem, klog: ctx.klog });
    this.ddwCtx = { hv: ctx.hv, klog: ctx.klog };
  }

  /**
   * iommu_pseries_alloc_table() + iommu_table_setparms_common(), then iommu_init_table() (which
   * clears every TCE) unless only the parameters are wanted.
   */
  private newTable(liobn: number, start: bigint, size: bigint, pageShift: number, init = true): IommuTable {
    const tbl = new IommuTable(this.tableOps, this.ctx.newTableId?.());
    tbl.itIndex = liobn;
    tbl.itPageShift = pageShift;
    tbl.itOffset = Number(start >> BigInt(pageShift));
    tbl.itSize = Number(size >> BigInt(pageShift));
    if (init) iommuInitTable(tbl, 0, 0, 0);
    return tbl;
  }

  setTableBase(dev: KPciDev, tbl: IommuTable | null): void {
    dev.table = tbl;
    this.ctx.log.emit({ layer: 'kernel', kind: 'table-base', device: dev.name, table: tbl ? tbl.id : null });
  }

  private defaultTable(pe: PseriesPe, size: bigint): IommuTable {
    const w = pe.dmaWindow!;
    return this.newTable(w.liobn, w.offset, size, IOMMU_PAGE_SHIFT_4K);
  }

  /**
   * pci_dma_dev_setup_pSeriesLP() for the PE's first device: the default table from
   * "ibm,dma-window", then spapr_tce_init_table_group(), which queries the hypervisor once.
   */
  setupPe(pe: PseriesPe): void {
    const w = pe.dmaWindow!;
    pe.tables[0] = this.defaultTable(pe, w.size);
    pe.tce32Start = Number(w.offset);
    pe.tce32Size = Number(w.size);
    pe.pgsizes = 1n << BigInt(IOMMU_PAGE_SHIFT_4K);
    for (const d of pe.devices) this.setTableBase(d, pe.tables[0]);
    if (!pe.ddwApplicable) {
      pe.maxDynamicWindowsSupported = -1;
      return;
    }
    const q = queryDdw(this.ddwCtx, pe, pe.pdev);
    if (q.ret) {
      this.ctx.klog.printk(`${devPrefix(pe.pdev)}: spapr_tce_init_table_group: query for max ddw failed`);
      pe.maxDynamicWindowsSupported = -1;
      return;
    }
    pe.maxDynamicWindowsSupported = q.windowsAvailable === 0 ? 1 : 2;
    pe.maxLevels = 1;
    pe.pgsizes |= queryPageSizeToMask(q.pageSize);
  }

  /**
   * enable_ddw() when a driver sets a 64-bit DMA mask: a window covering all memory up to the
   * hot-plug maximum (direct mapping, pre-filled with H_PUT_TCE_INDIRECT) or a smaller dynamic
   * one. Any failure puts the PE on the failed list for the rest of the boot.
   */
  enableDdw(pe: PseriesPe, dev: KPciDev, driver: string, dmaMaskBits: number): boolean {
    // disable_ddw leaves pseries_pci_controller_ops.iommu_bypass_supported unset: no caller.
    if (this.ctx.disableDdw) return false;
    if (pe.ddw) return pe.ddw.name === DIRECT64;
    if (this.failedDdw.has(pe)) return false;
    const fail = () => {
      this.failedDdw.add(pe);
      return false;
    };
    if (!pe.ddwApplicable) return fail();
    const q = queryDdw(this.ddwCtx, pe, dev, driver);
    if (q.ret || q.windowsAvailable === 0) return fail();
    const pageShift = iommuGetPageShift(q.pageSize);
    if (!pageShift) return fail();
    const ddwSz = Math.min(orderBase2(q.largestBlock << BigInt(pageShift)), dmaMaskBits);
    const len = orderBase2(this.ctx.memoryHotplugMax);
    const direct = ddwSz >= len;
    const windowShift = direct ? len : ddwSz;
    const c = createDdw(this.ddwCtx, pe, dev, pageShift, windowShift, driver);
    if (c.ret) return fail();
    pe.ddw = { name: direct ? DIRECT64 : DMA64, liobn: c.liobn, dmaBase: c.start, tceShift: pageShift, windowShift };
    this.ctx.klog.printk(`${driver} ${dev.name}: lsa_required: 0, lsa_enabled: 0, direct mapping: ${direct ? 1 : 0}`);
    if (direct) {
      // tce_setrange_multi_pSeriesLP() over all RAM: no iommu_table, no clearing first.
      const tbl = this.newTable(c.liobn, c.start, 1n << BigInt(windowShift), pageShift, false);
      const pages = Math.ceil(this.ctx.mem.ramBytes / tbl.pageSize);
      this.tableOps.set(tbl, tbl.itOffset, pages, 0, 0);
      dev.dmaOffset = c.start;
      dev.bypass = true;
    }
    return direct;
  }

  /** Puts the PE on the failed list (unless that quirk is fixed) and returns ret. */
  private failed(pe: PseriesPe, ret: number): number {
    if (this.ctx.quirks['failed-ddw-sticky']) this.failedDdw.add(pe);
    return ret;
  }

  /**
   * remove_dma_window_named(): drop a window property, and ask the hypervisor to remove the
   * window. Without ibm,ddw-applicable nothing happens at all.
   */
  private removeDmaWindowNamed(pe: PseriesPe, name: string, cleanup: boolean): number {
    if (!pe.ddwApplicable) return 0;
    if (name === DEFAULT_WINDOW) {
      const w = pe.dmaWindow;
      if (!w) return -EINVAL;
      if (!this.ctx.quirks['default-window-kept-by-hypervisor']) this.removeWindow(pe, w.liobn, cleanup);
      pe.dmaWindowSaved ??= w;
      pe.dmaWindow = null;
      return 0;
    }
    const p = pe.ddw;
    if (!p || p.name !== name) return -EINVAL;
    this.removeWindow(pe, p.liobn, cleanup);
    pe.ddw = null;
    return 0;
  }

  /** remove_dma_window(): clean_dma_window() first when asked, then the RTAS remove. */
  private removeWindow(pe: PseriesPe, liobn: number, cleanup: boolean): void {
    const t = this.ctx.hv.table(liobn);
    if (cleanup && t?.enabled) this.cleanDmaWindow(pe, liobn, t.busOffset, t.nbTable, t.pageShift);
    removeDmaWindow(this.ddwCtx, pe, liobn);
  }

  /** clean_dma_window() → tce_clearrange_multi_pSeriesLP(): H_STUFF_TCE of 512 at a time, always. */
  private cleanDmaWindow(pe: PseriesPe, liobn: number, start: bigint, entries: number, pageShift: number): void {
    for (let done = 0; done < entries; done += SPAPR_TCE_LIST_MAX) {
      const n = Math.min(SPAPR_TCE_LIST_MAX, entries - done);
      if (this.ctx.hv.hStuffTce(liobn, start + (BigInt(done) << BigInt(pageShift)), 0n, n) !== H_SUCCESS) {
        this.ctx.klog.printk(`${pe.node} failed to clear tces in window.`);
        return;
      }
    }
  }

  /**
   * dma_set_mask() → dma_iommu_dma_supported(): a mask above 32 bits asks
   * iommu_bypass_supported_pSeriesLP(), i.e. enable_ddw(); a direct window means bypass. Otherwise
   * the device's table must start below what the mask reaches. Returns 0 or -EIO.
   */
  dmaSetMask(pe: PseriesPe, dev: KPciDev, driver: string, mask: bigint): number {
    dev.dmaMask = mask;
    if (mask > 0xffffffffn && this.enableDdw(pe, dev, driver, mask.toString(2).length)) {
      dev.bypass = true;
      return 0;
    }
    dev.bypass = false;
    const tbl = dev.table;
    if (!tbl) {
      this.ctx.klog.printk(`${driver} ${dev.name}: Warning: IOMMU dma not supported: mask 0x${mask.toString(16).padStart(8, '0')}, table unavailable`);
      return -EIO;
    }
    if (BigInt(tbl.itOffset) > mask >> BigInt(tbl.itPageShift)) {
      this.ctx.klog.printk(`${driver} ${dev.name}: Warning: IOMMU offset too big for device mask`);
      return -EIO;
    }
    return 0;
  }

  /** restore_default_dma_window(): reset the PE's windows and bring "ibm,dma-window" back. */
  private restoreDefaultDmaWindow(pe: PseriesPe): void {
    resetDmaWindow(this.ddwCtx, pe, pe.pdev);
    if (!pe.dmaWindow && pe.dmaWindowSaved) pe.dmaWindow = pe.dmaWindowSaved;
  }

  private isDefaultRequest(pe: PseriesPe, pageShift: number, windowSize: bigint): boolean {
    return windowSize <= BigInt(pe.tce32Size) && pageShift === IOMMU_PAGE_SHIFT_4K;
  }

  // ---- iommu_table_group_ops (spapr_tce_table_group_ops) ----

  /** spapr_tce_get_table_size(): TCEs × 8; ~0U for more than one level. */
  getTableSize(pageShift: number, windowSize: bigint, levels: number): number {
    if (levels > 1) return 0xffffffff;
    return Number(windowSize >> BigInt(pageShift - 3));
  }

  /** spapr_tce_create_table(). */
  createTable(tg: TableGroup, num: number, pageShift: number, windowSize: bigint, levels: number): number | IommuTable {
    const pe = tg as PseriesPe;
    const pdev = pe.pdev;
    const { klog } = this.ctx;
    if (windowSize <= 0n || (windowSize & (windowSize - 1n)) !== 0n || levels > 1) return -EINVAL;
    if (this.ctx.quirks['failed-ddw-sticky'] && this.failedDdw.has(pe)) {
      klog.printk(`${devPrefix(pdev)}: ${pe.node} in failed DDW device list`);
      return -ENODEV;
    }
    const windowShift = orderBase2(windowSize);
    if (num === 0) {
      const isDefault = this.isDefaultRequest(pe, pageShift, windowSize);
      if (pe.ddw && (!isDefault || !pe.dmaWindow)) {
        klog.printk(`${devPrefix(pdev)}: ${pe.node}: 64-bit window already present.`);
        return -EPERM;
      }
      if (isDefault && !pe.dmaWindow) {
        this.restoreDefaultDmaWindow(pe);
        const tbl = this.defaultTable(pe, 1n << BigInt(windowShift));
        pe.tables[0] = tbl;
        return this.finish(pe, 0, tbl, pageShift, windowSize, levels);
      }
    }
    if (!pe.ddwApplicable) {
      klog.printk(`${devPrefix(pdev)}: ibm,ddw-applicable not found`);
      return this.failed(pe, -EINVAL);
    }
    klog.printk(`spapr_tce_create_table: Calling query ${pe.node}`);
    const q = queryDdw(this.ddwCtx, pe, pdev);
    if (q.ret) return this.failed(pe, -ENODEV);
    if (q.largestBlock < 1n << BigInt(windowShift - pageShift)) return -EINVAL;
    const c = createDdw(this.ddwCtx, pe, pdev, pageShift, windowShift);
    if (c.ret) {
      klog.printk(`spapr_tce_create_table: Create ddw failed ${pe.node}`);
      return this.failed(pe, -ENODEV);
    }
    const prop: DdwProp = { name: DMA64, liobn: c.liobn, dmaBase: c.start, tceShift: pageShift, windowShift };
    pe.ddw = prop;
    const tbl = this.newTable(c.liobn, c.start, 1n << BigInt(windowShift), pageShift);
    pe.tables[num] = tbl;
    this.setTableBase(pdev, tbl);
    pdev.dmaOffset = c.start;
    return this.finish(pe, num, tbl, pageShift, windowSize, levels);
  }

  /**
   * The common exit: the userspace view, the allocated size VFIO un-accounts later, and the
   * caller's reference. The kernel ignores a failed view (unchecked-userspace-view); checked,
   * the window and its table go again and the create fails with -ENOMEM.
   */
  private finish(pe: PseriesPe, num: number, tbl: IommuTable, pageShift: number, windowSize: bigint, levels: number): number | IommuTable {
    const ret = this.tableOps.userspaceViewAlloc(tbl, this.ctx.current());
    if (ret && !this.ctx.quirks['unchecked-userspace-view']) {
      if (pe.ddw?.liobn === tbl.itIndex) this.removeDmaWindowNamed(pe, DMA64, false);
      pe.tables[num] = null;
      if (pe.pdev.table === tbl) this.setTableBase(pe.pdev, null);
      pe.pdev.dmaOffset = 0n;
      iommuTceTablePut(tbl);
      return ret;
    }
    tbl.itAllocatedSize = this.getTableSize(pageShift, windowSize, levels);
    return iommuTceTableGet(tbl)!;
  }

  /** spapr_tce_set_window(): the window exists already; only the PE's own table fits. */
  setWindow(tg: TableGroup, num: number, tbl: IommuTable): number {
    return tbl === tg.tables[num] ? 0 : -EPERM;
  }

  /** spapr_tce_unset_window(): remove the window without clearing TCEs (userspace did). */
  unsetWindow(tg: TableGroup, num: number): number {
    const pe = tg as PseriesPe;
    const tbl = pe.tables[num];
    if (!tbl) return 0;
    const isDefault = num === 0 && tbl.itPageShift === IOMMU_PAGE_SHIFT_4K && tbl.windowSize <= BigInt(pe.tce32Size);
    if (this.removeDmaWindowNamed(pe, isDefault ? DEFAULT_WINDOW : DMA64, false)) {
      this.ctx.klog.printk(`spapr_tce_unset_window: The existing DDW removal failed for node ${pe.node}`);
      return this.failed(pe, -ENODEV);
    }
    iommuTceTablePut(tbl);
    pe.tables[num] = null;
    return 0;
  }

  /** spapr_tce_take_ownership(): every window goes (TCEs cleared), the device loses its table. */
  takeOwnership(tg: TableGroup, devName: string): number {
    const pe = tg as PseriesPe;
    if (!pe.tables[0] && pe.maxDynamicWindowsSupported !== 1) return 0;
    if (pe.ddw) this.removeDmaWindowNamed(pe, pe.ddw.name, true);
    if (pe.tables[0]) {
      this.removeDmaWindowNamed(pe, DEFAULT_WINDOW, true);
      iommuTceTablePut(pe.tables[0]);
      pe.tables[0] = null;
    }
    const dev = pe.devices.find((d) => d.name === devName);
    if (dev) this.setTableBase(dev, null);
    return 0;
  }

  /** spapr_tce_release_ownership(): reset the PE and give the device its default table back. */
  releaseOwnership(tg: TableGroup, devName: string): void {
    const pe = tg as PseriesPe;
    if (pe.tables[0]) return;
    this.restoreDefaultDmaWindow(pe);
    const tbl = this.defaultTable(pe, BigInt(pe.tce32Size));
    pe.tables[0] = tbl;
    const dev = pe.devices.find((d) => d.name === devName);
    if (dev) this.setTableBase(dev, tbl);
  }
}
