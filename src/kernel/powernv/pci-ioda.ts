/**
 * PowerNV IODA2 DMA (powernv/pci-ioda.c): the boot-time default window, set/unset of windows
 * through OPAL, the 64-bit bypass window, TCE invalidation, and the table-group ops VFIO uses
 * (create_table, set_window, unset_window, take/release_ownership, get_table_size).
 */
import { rounddownPow2, roundupPow2, shlToBig } from '../../base/bits.js';
import type { EventLog } from '../../base/events.js';
import { OPAL_PCI_TCE_KILL_PAGES, OPAL_PCI_TCE_KILL_PE, type Opal } from '../../firmware/opal.js';
import type { PhysMemory } from '../../hw/memory.js';
import type { DmaDirection } from '../../hw/tce.js';
import { iommuInitTable } from '../iommu.js';
import { IommuTable, type IommuTableOps, iommuTceTableGet, iommuTceTablePut } from '../iommu-table.js';
import type { KPciDev } from '../pci.js';
import type { KernelLog } from '../printk.js';
import type { Process } from '../process.js';
import { softLockup } from '../softlockup.js';
import type { TableGroup, TableGroupOps } from '../table-group.js';
import type { Pe } from './pe.js';
import {
  POWERNV_IOMMU_DEFAULT_LEVELS,
  POWERNV_IOMMU_MAX_LEVELS,
  pnvPciIoda2GetTableSize,
  pnvPciIoda2TableAllocPages,
  pnvPciIoda2TableFreePages,
  pnvTceBuild,
  pnvTceFree,
  pnvTceGet,
  pnvTceRunLength,
  pnvTceUseraddrptr,
  pnvTceXchg,
  pnvTceXchgRun,
} from './pci-ioda-tce.js';

export interface PnvIodaContext {
  mem: PhysMemory;
  klog: KernelLog;
  opal: Opal;
  log: EventLog;
  /** memory_hotplug_max(): top of RAM including hot-pluggable memory. */
  memoryHotplugMax: bigint;
  /** memblock_end_of_DRAM(). */
  dramEnd: bigint;
  /** Boot option iommu=nobypass. */
  bypassDisabled: boolean;
  /** Quirk: the pre-2017 kernel left devices of a bus PE with their boot-time table pointer. */
  staleTablePointer: boolean;
  /** Quirk: PHB3's per-TCE kill of no pages at index 0 loops without end. */
  phb3KillNoPagesLoops?: boolean;
  /** Devices on a bus (and below it for bus-all PEs), for pnv_ioda_setup_bus_dma(). */
  busDevices(pe: Pe): KPciDev[];
  /** The machine's next iommu_table id. */
  newTableId?: () => number;
  /** The task in the kernel (null at boot). */
  current?: () => Process | null;
}

const U64_MAX = (1n << 64n) - 1n;
/** PHB3 TCE kill register: invalidate one TCE (PPC_BIT(2)), of the PE in the low byte. */
const PHB3_TCE_KILL_INVAL_ONE = 1n << 61n;

/**
 * The kill-register writes pnv_pci_phb3_tce_invalidate() makes, one per TCE from the first page's
 * value to the last's, both unsigned 64-bit; null when the loop never ends. The last page is
 * index + npages - 1, so a kill of no pages at index 0 names page -1: every address bit of the end
 * value is set, the running value wraps past 2^64 before it exceeds the end, and the CPU stays in
 * the loop.
 */
export function phb3KillWrites(pe: number, shift: number, index: number, npages: number): bigint | null {
  const base = PHB3_TCE_KILL_INVAL_ONE | BigInt(pe & 0xff);
  const s = BigInt(shift);
  const start = base | ((BigInt(index) << s) & U64_MAX);
  const end = base | ((BigInt.asUintN(64, BigInt(index) + BigInt(npages) - 1n) << s) & U64_MAX);
  const inc = 1n << s;
  if (start > end) return 0n;
  if (end + inc > U64_MAX) return null;
  return (end - start) / inc + 1n;
}

export class PnvIoda2 implements TableGroupOps {
  readonly tableOps: IommuTableOps;
  /** iommu_init_table() greets once per boot. */
  private welcomed = false;

  constructor(private readonly ctx: PnvIodaContext) {
    const c = ctx;
    const self = this;
    this.tableOps = {
      set(tbl, index, npages, pa, dir: DmaDirection) {
        const ret = pnvTceBuild(c, tbl, index, npages, pa, dir);
        if (!ret) self.tceInvalidate(tbl, index, npages);
        return ret;
      },
      xchgNoKill: (tbl, index, hpa, dir, out) => pnvTceXchg(c, tbl, index, hpa, dir, out),
      runLength: (tbl, index) => pnvTceRunLength(tbl, index),
      xchgRunNoKill: (tbl, index, count, dir, run) => pnvTceXchgRun(c, tbl, index, count, dir, run),
      tceKill: (tbl, index, npages) => self.tceInvalidate(tbl, index, npages),
      useraddrptr: (tbl, index, alloc) => pnvTceUseraddrptr(c, tbl, index, alloc),
      clear(tbl, index, npages) {
        pnvTceFree(c, tbl, index, npages);
        self.tceInvalidate(tbl, index, npages);
      },
      get: (tbl, index) => pnvTceGet(c, tbl, index),
      free: (tbl) => pnvPciIoda2TableFreePages(c, tbl),
    };
  }

  private peInfo(pe: Pe, msg: string): void {
    this.ctx.klog.printk(pe.message(msg));
  }

  /** pnv_pci_ioda2_tce_invalidate(): a page kill in every PE the table is programmed into. */
  tceInvalidate(tbl: IommuTable, index: number, npages: number): void {
    const groups = tbl.groups;
    const shift = tbl.itPageShift;
    const pageSize = tbl.pageSize;
    // The bus address as a number when exact: OPAL makes it a bigint only for a listener.
    const bus = index * pageSize;
    for (let i = 0; i < groups.length; i++) {
      const pe = groups[i] as Pe;
      const hw = pe.phb.hw;
      if (!hw.gen.killViaOpal) {
        // The register writes of pnv_pci_phb3_tce_invalidate(); fixed, no pages make none.
        const writes = npages || this.ctx.phb3KillNoPagesLoops ? phb3KillWrites(pe.peNumber, shift, index, npages) : 0n;
        if (writes === 0n) continue;
        const task = this.ctx.current?.() ?? null;
        if (writes === null && task) {
          softLockup(this.ctx.klog, this.ctx.log, task, 'pnv_pci_phb3_tce_invalidate');
          return;
        }
        hw.killPages(pe.peNumber, shift, shlToBig(index, shift), npages);
      } else
        this.ctx.opal.pciTceKill(
          pe.phb.opalId,
          OPAL_PCI_TCE_KILL_PAGES,
          pe.peNumber,
          pageSize,
          bus <= Number.MAX_SAFE_INTEGER ? bus : shlToBig(index, shift),
          npages,
        );
    }
  }

  /** pnv_pci_ioda2_tce_invalidate_pe(). */
  private invalidatePe(pe: Pe): void {
    if (!pe.phb.hw.gen.killViaOpal) pe.phb.hw.killPe(pe.peNumber);
    else this.ctx.opal.pciTceKill(pe.phb.opalId, OPAL_PCI_TCE_KILL_PE, pe.peNumber, 0, 0n, 0);
  }

  /** pnv_pci_ioda2_setup_dma_pe(). */
  setupDmaPe(pe: Pe): void {
    this.peInfo(pe, `Setting up 32-bit TCE table at 0..${pe.phb.m32PciBase.toString(16).padStart(8, '0')}`);
    pe.tce32Start = 0;
    pe.tce32Size = pe.phb.m32PciBase;
    pe.maxDynamicWindowsSupported = 2;
    pe.maxLevels = POWERNV_IOMMU_MAX_LEVELS;
    pe.pgsizes = pe.phb.hw.gen.tceShifts.reduce((m, s) => m | (1n << BigInt(s)), 0n);
    if (this.setupDefaultConfig(pe)) return;
    pe.dmaSetupDone = true;
  }

  /** pnv_pci_ioda2_setup_default_config(): the kernel's own window #0 and the bypass window. */
  setupDefaultConfig(pe: Pe): number {
    const { mem } = this.ctx;
    const pageShift = mem.pageShift;
    const maxMemory = rounddownPow2(this.ctx.memoryHotplugMax);
    const maxblock = 1n << BigInt(pageShift + mem.maxPageOrder);
    const cap = (maxblock * 8n) << BigInt(pageShift);
    const windowSize = cap < maxMemory ? cap : maxMemory;
    const tcesOrder = Math.log2(Number(windowSize >> BigInt(pageShift)));
    const tcelevelOrder = Math.log2(Number(maxblock >> 3n));
    let levels = Math.floor(tcesOrder / tcelevelOrder);
    if (tcesOrder % tcelevelOrder) levels++;
    levels = Math.max(levels, POWERNV_IOMMU_DEFAULT_LEVELS);
    const r = this.createTableRaw(pe, 0, pageShift, windowSize, levels, false);
    if (typeof r === 'number') {
      this.ctx.klog.printk(pe.message(`Failed to create 32-bit TCE table, err ${r}`));
      return r;
    }
    let tbl: IommuTable | null = r;
    let resStart = 0;
    let resEnd = 0;
    if (windowSize > BigInt(pe.phb.m32PciBase)) {
      resStart = pe.phb.m32PciBase / tbl.pageSize;
      const top = windowSize < 1n << 32n ? windowSize : 1n << 32n;
      resEnd = Number(top >> BigInt(tbl.itPageShift));
    }
    tbl.itIndex = (pe.phb.globalNumber << 16) | pe.peNumber;
    const inited = iommuInitTable(tbl, pe.phb.hw.mem.nodeOf(tbl.itBase / mem.pageSize), resStart, resEnd);
    if (inited && !this.welcomed) {
      this.welcomed = true;
      this.ctx.klog.printk('IOMMU table initialized, virtual merging enabled');
    }
    const rc = inited ? this.setWindow(pe, 0, tbl) : -12;
    if (rc) {
      this.ctx.klog.printk(pe.message(`Failed to configure 32-bit TCE table, err ${rc}`));
      iommuTceTablePut(tbl);
      tbl = null;
    }
    if (!this.ctx.bypassDisabled) this.setBypass(pe, true);
    if (pe.pdev) this.setTableBase(pe.pdev, tbl);
    // The creator's reference is kept; take_ownership drops it after unsetting the window.
    return 0;
  }

  setTableBase(dev: KPciDev, tbl: IommuTable | null): void {
    dev.table = tbl;
    this.ctx.log.emit({ layer: 'kernel', kind: 'table-base', device: dev.name, table: tbl ? tbl.id : null });
  }

  /**
   * dma_set_mask() on a PowerNV device: pnv_pci_ioda_iommu_bypass_supported() picks the 64-bit
   * bypass window when the mask covers it, else the TCE window (dma_iommu_dma_supported()).
   */
  dmaSetMask(pe: Pe, dev: KPciDev, mask: bigint): number {
    dev.dmaMask = mask;
    if (pe.tceBypassEnabled && mask >= pe.tceBypassBase + this.ctx.dramEnd - 1n) {
      dev.bypass = true;
      return 0;
    }
    dev.bypass = false;
    const tbl = dev.table;
    if (!tbl) {
      this.ctx.klog.printk(
        `${dev.driverName ?? dev.driver ?? 'pci'} ${dev.name}: Warning: IOMMU dma not supported: mask 0x${mask.toString(16).padStart(8, '0')}, table unavailable`,
      );
      return -5;
    }
    if (BigInt(tbl.itOffset) > mask >> BigInt(tbl.itPageShift)) return -5;
    return 0;
  }

  /** pnv_pci_ioda2_set_bypass(). */
  setBypass(pe: Pe, enable: boolean): void {
    const windowId = (pe.peNumber << 1) + 1;
    this.peInfo(pe, `${enable ? 'En' : 'Dis'}abling 64-bit DMA bypass`);
    const top = enable ? roundupPow2(this.ctx.dramEnd) : 0n;
    const rc = this.ctx.opal.mapPeDmaWindowReal(pe.phb.opalId, pe.peNumber, windowId, pe.tceBypassBase, top);
    if (rc) this.ctx.klog.printk(pe.message(`OPAL error ${rc} configuring bypass window`));
    else pe.tceBypassEnabled = enable;
  }

  private createTableRaw(pe: Pe, num: number, pageShift: number, windowSize: bigint, levels: number, userspace: boolean): number | IommuTable {
    const busOffset = num ? pe.tceBypassBase : BigInt(pe.tce32Start);
    const tbl = new IommuTable(this.tableOps, this.ctx.newTableId?.());
    const node = pe.phb.hw.mem.nodeOf(0);
    const ret = pnvPciIoda2TableAllocPages(this.ctx, tbl, node, busOffset, pageShift, windowSize, levels, userspace);
    if (ret) {
      iommuTceTablePut(tbl);
      return ret;
    }
    return tbl;
  }

  // ---- iommu_table_group_ops (pnv_pci_ioda2_ops) ----

  getTableSize(pageShift: number, windowSize: bigint, levels: number): number {
    return pnvPciIoda2GetTableSize(this.ctx.mem.pageShift, pageShift, windowSize, levels);
  }

  /** pnv_pci_ioda2_create_table_userspace(). */
  createTable(tg: TableGroup, num: number, pageShift: number, windowSize: bigint, levels: number): number | IommuTable {
    const r = this.createTableRaw(tg as Pe, num, pageShift, windowSize, levels, true);
    if (typeof r !== 'number') r.itAllocatedSize = this.getTableSize(pageShift, windowSize, levels);
    return r;
  }

  /** pnv_pci_ioda2_set_window(). */
  setWindow(tg: TableGroup, num: number, tbl: IommuTable): number {
    const pe = tg as Pe;
    const size = tbl.itIndirectLevels ? tbl.itLevelSize : tbl.itSize;
    const start = tbl.start;
    const end = start + tbl.windowSize - 1n;
    this.peInfo(pe, `Setting up window#${num} ${start.toString(16)}..${end.toString(16)} pg=${tbl.pageSize.toString(16)}`);
    const rc = this.ctx.opal.mapPeDmaWindow(pe.phb.opalId, pe.peNumber, (pe.peNumber << 1) + num, tbl.itIndirectLevels + 1, tbl.itBase, size * 8, tbl.pageSize);
    if (rc) {
      this.ctx.klog.printk(pe.message(`Failed to configure TCE table, err ${rc}`));
      return rc;
    }
    tbl.groups.unshift(pe);
    pe.tables[num] = iommuTceTableGet(tbl);
    this.invalidatePe(pe);
    return 0;
  }

  /** pnv_pci_ioda2_unset_window(). */
  unsetWindow(tg: TableGroup, num: number): number {
    const pe = tg as Pe;
    this.peInfo(pe, `Removing DMA window #${num}`);
    const rc = this.ctx.opal.mapPeDmaWindow(pe.phb.opalId, pe.peNumber, (pe.peNumber << 1) + num, 0, 0, 0, 0);
    if (rc) this.ctx.klog.printk(pe.message(`Unmapping failed, ret = ${rc}`));
    else this.invalidatePe(pe);
    const tbl = pe.tables[num];
    if (tbl) {
      const i = tbl.groups.indexOf(pe);
      if (i >= 0) tbl.groups.splice(i, 1);
      pe.tables[num] = null;
      iommuTceTablePut(tbl);
    }
    return rc;
  }

  /** pnv_ioda_setup_bus_dma(): every device of a bus PE gets tables[0] and the bypass offset. */
  private setupBusDma(pe: Pe): void {
    for (const dev of this.ctx.busDevices(pe)) {
      this.setTableBase(dev, pe.tables[0]);
      dev.dmaOffset = pe.tceBypassBase;
    }
  }

  /** pnv_ioda2_take_ownership(). */
  takeOwnership(tg: TableGroup, _dev: string): number {
    const pe = tg as Pe;
    const tbl = pe.tables[0];
    if (!tbl) return 0;
    this.setBypass(pe, false);
    this.unsetWindow(pe, 0);
    if (!this.ctx.staleTablePointer) {
      if (pe.pbus !== null) this.setupBusDma(pe);
      else if (pe.pdev) this.setTableBase(pe.pdev, null);
    }
    iommuTceTablePut(tbl);
    return 0;
  }

  /**
   * pnv_ioda_release_pe() for the last device of a PE: pnv_pci_ioda2_release_pe_dma() takes its
   * window #0 and bypass down and drops the kernel's table.
   */
  releasePe(pe: Pe): void {
    this.peInfo(pe, 'Releasing PE');
    if (!pe.dmaSetupDone) return;
    const tbl = pe.tables[0];
    const rc = this.unsetWindow(pe, 0);
    if (rc) this.ctx.klog.printk(pe.message(`OPAL error ${rc} release DMA window`));
    this.setBypass(pe, false);
    if (pe.tables[1]) this.unsetWindow(pe, 1);
    iommuTceTablePut(tbl);
    pe.dmaSetupDone = false;
  }

  /** pnv_ioda2_release_ownership(). */
  releaseOwnership(tg: TableGroup, _dev: string): void {
    const pe = tg as Pe;
    if (pe.tables[0]) return;
    this.setupDefaultConfig(pe);
    if (pe.pbus !== null && !this.ctx.staleTablePointer) this.setupBusDma(pe);
  }
}
