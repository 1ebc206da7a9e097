/**
 * The PAPR hypervisor's DMA side, as QEMU implements it (hw/ppc/spapr_iommu.c, spapr_rtas_ddw.c):
 * per PHB a fixed set of LIOBN-addressed TCE tables it owns, the TCE hypercalls and the RTAS
 * dynamic-DMA-window calls. Bad input gets the PAPR/RTAS status and changes nothing, except where
 * QEMU itself stops part-way (INDIRECT and STUFF keep the entries written before the failure).
 */
import type { EventLog } from '../../base/events.js';
import type { PhysMemory } from '../../hw/memory.js';
import { type HypervisorProfile, queryPageMask } from './profile.js';
import { SpaprTceTable } from './tce-table.js';

export const H_SUCCESS = 0;
export const H_FUNCTION = -2;
export const H_PARAMETER = -4;

export const RTAS_SUCCESS = 0;
export const RTAS_HW_ERROR = -1;
export const RTAS_PARAM_ERROR = -3;

export const RTAS_IBM_QUERY_PE_DMA_WINDOW = 0x2026;
export const RTAS_IBM_CREATE_PE_DMA_WINDOW = 0x2027;
export const RTAS_IBM_REMOVE_PE_DMA_WINDOW = 0x2028;
export const RTAS_IBM_RESET_PE_DMA_WINDOW = 0x2029;

/** TCEs in one H_PUT_TCE_INDIRECT list page / one H_STUFF_TCE call the guest makes. */
export const SPAPR_TCE_LIST_MAX = 512;
const SPAPR_TCE_PAGE_MASK = 0xfffn;
/** BUID of PHB 0 (SPAPR_PCI_BASE_BUID). */
export const SPAPR_PCI_BASE_BUID = 0x800000020000000n;

/** SPAPR_PCI_LIOBN(phb, window). */
export function spaprPciLiobn(phb: number, window: number): number {
  return (0x80000000 | (phb << 8) | window) >>> 0;
}

/** One spapr-pci-host-bridge: its BUID and its pre-created TCE tables. */
export class SpaprPhb {
  readonly buid: bigint;
  readonly tables: SpaprTceTable[] = [];

  constructor(
    readonly index: number,
    windows: number,
  ) {
    this.buid = SPAPR_PCI_BASE_BUID + BigInt(index);
    for (let w = 0; w < windows; w++) this.tables.push(new SpaprTceTable(spaprPciLiobn(index, w)));
  }

  get enabledWindows(): number {
    return this.tables.filter((t) => t.enabled).length;
  }
}

/** The device-tree DMA properties of one PHB node. */
export interface PhbDmaProperties {
  /** ibm,dma-window: liobn, bus offset, size. */
  dmaWindow: { liobn: number; offset: bigint; size: bigint };
  /** ibm,ddw-applicable: query, create, remove tokens (absent without DDW). */
  ddwApplicable: [number, number, number] | null;
  /** ibm,ddw-extensions: [count, reset token, 6-cell query] (absent without DDW). */
  ddwExtensions: number[] | null;
}

export interface QueryResult {
  status: number;
  windowsAvailable: number;
  largestBlock: bigint;
  pageMask: number;
  migrationCapable: number;
}

export interface CreateResult {
  status: number;
  liobn: number;
  addrHi: number;
  addrLo: number;
}

export class PaprHypervisor {
  readonly phbs: SpaprPhb[] = [];
  private readonly byLiobn = new Map<number, SpaprTceTable>();

  constructor(
    readonly profile: HypervisorProfile,
    private readonly mem: PhysMemory,
    private readonly log: EventLog,
    phbs: number,
  ) {
    const windows = profile.ddw ? profile.windowsPerPhb : 1;
    for (let i = 0; i < phbs; i++) {
      const phb = new SpaprPhb(i, windows);
      this.phbs.push(phb);
      for (const t of phb.tables) this.byLiobn.set(t.liobn, t);
      this.dmaReset(phb);
    }
  }

  table(liobn: number): SpaprTceTable | undefined {
    return this.byLiobn.get(liobn);
  }

  phbOf(buidHi: number, buidLo: number): SpaprPhb | undefined {
    const buid = (BigInt(buidHi >>> 0) << 32n) | BigInt(buidLo >>> 0);
    return this.phbs.find((p) => p.buid === buid);
  }

  dtProperties(phb: SpaprPhb): PhbDmaProperties {
    const t = phb.tables[0]!;
    return {
      dmaWindow: { liobn: t.liobn, offset: 0n, size: this.profile.defaultWindowSize },
      ddwApplicable: this.profile.ddw ? [RTAS_IBM_QUERY_PE_DMA_WINDOW, RTAS_IBM_CREATE_PE_DMA_WINDOW, RTAS_IBM_REMOVE_PE_DMA_WINDOW] : null,
      ddwExtensions: this.profile.ddw ? [2, RTAS_IBM_RESET_PE_DMA_WINDOW, 1] : null,
    };
  }

  /** The DMA-related words of /rtas ibm,hypertas-functions, which the guest turns into firmware features. */
  hypertasFunctions(): string[] {
    return this.profile.multiTce ? ['hcall-tce', 'hcall-multi-tce'] : ['hcall-tce'];
  }

  /** spapr_phb_dma_reset(): every window off, then the default window (4K pages at 0) on. */
  private dmaReset(phb: SpaprPhb): void {
    for (const t of phb.tables) t.disable();
    phb.tables[0]!.enable(12, 0n, this.profile.defaultWindowSize >> 12n);
  }

  /** One TCE hypercall: a verbose event (one per TCE on the map paths), counted always. */
  private hcall(call: string, args: (number | bigint)[], rc: number): number {
    if (this.log.verbose) this.log.emit({ layer: 'firmware', kind: 'hcall', call, args, rc });
    else this.log.tally('firmware', 'hcall');
    return rc;
  }

  private rtas(call: string, args: (number | bigint)[], rc: number): number {
    this.log.emit({ layer: 'firmware', kind: 'rtas', call, args, rc });
    return rc;
  }

  /** The table of a LIOBN if it is enabled; hcalls on a disabled or unknown LIOBN fail alike. */
  private liveTable(liobn: number): SpaprTceTable | undefined {
    const t = this.byLiobn.get(liobn);
    return t?.enabled ? t : undefined;
  }

  /** H_PUT_TCE(liobn, ioba, tce): the ioba is masked down to its page. */
  hPutTce(liobn: number, ioba: bigint, tce: bigint): number {
    const args = [liobn, ioba, tce];
    const t = this.liveTable(liobn);
    if (!t) return this.hcall('H_PUT_TCE', args, H_PARAMETER);
    const i = t.index(ioba);
    if (i < 0) return this.hcall('H_PUT_TCE', args, H_PARAMETER);
    t.set(i, tce);
    return this.hcall('H_PUT_TCE', args, H_SUCCESS);
  }

  /** H_GET_TCE(liobn, ioba) → the raw TCE stored. */
  hGetTce(liobn: number, ioba: bigint): { rc: number; tce: bigint } {
    const t = this.liveTable(liobn);
    const i = t ? t.index(ioba) : -1;
    if (!t || i < 0) return { rc: this.hcall('H_GET_TCE', [liobn, ioba], H_PARAMETER), tce: 0n };
    return { rc: this.hcall('H_GET_TCE', [liobn, ioba], H_SUCCESS), tce: t.get(i) };
  }

  /**
   * H_PUT_TCE_INDIRECT(liobn, ioba, tce_list, npages): up to 512 big-endian TCEs from a 4K-aligned
   * page of guest memory. Stops at the first entry past the window; earlier ones stay written.
   */
  hPutTceIndirect(liobn: number, ioba: bigint, tceList: bigint, npages: number): number {
    const args = [liobn, ioba, tceList, npages];
    if (!this.profile.multiTce) return this.hcall('H_PUT_TCE_INDIRECT', args, H_FUNCTION);
    const t = this.liveTable(liobn);
    if (!t || npages > SPAPR_TCE_LIST_MAX || (tceList & SPAPR_TCE_PAGE_MASK) !== 0n) return this.hcall('H_PUT_TCE_INDIRECT', args, H_PARAMETER);
    if (!this.mem.isRam(Number(tceList))) return this.hcall('H_PUT_TCE_INDIRECT', args, H_PARAMETER);
    const rc = fillEntries(t, ioba, npages, (k) => BigInt(this.mem.readU64BE(Number(tceList) + 8 * k)));
    return this.hcall('H_PUT_TCE_INDIRECT', args, rc);
  }

  /** H_STUFF_TCE(liobn, ioba, tce_value, npages): one value into npages entries. */
  hStuffTce(liobn: number, ioba: bigint, value: bigint, npages: number): number {
    const args = [liobn, ioba, value, npages];
    if (!this.profile.multiTce) return this.hcall('H_STUFF_TCE', args, H_FUNCTION);
    const t = this.liveTable(liobn);
    if (!t || npages > t.nbTable) return this.hcall('H_STUFF_TCE', args, H_PARAMETER);
    // The entries of a window are consecutive: write those that fit, fail if not all did.
    const first = t.index(ioba);
    if (first < 0) return this.hcall('H_STUFF_TCE', args, H_PARAMETER);
    const n = Math.min(npages, t.nbTable - first);
    t.fill(first, n, value);
    return this.hcall('H_STUFF_TCE', args, n === npages && n > 0 ? H_SUCCESS : H_PARAMETER);
  }

  /** ibm,query-pe-dma-window (6-output form). QEMU finds the PHB by BUID; the config address is not used. */
  queryPeDmaWindow(cfgAddr: number, buidHi: number, buidLo: number): QueryResult {
    const phb = this.phbOf(buidHi, buidLo);
    const args = [cfgAddr, buidHi, buidLo];
    if (!phb || !this.profile.ddw) {
      return { status: this.rtas('ibm,query-pe-dma-window', args, RTAS_PARAM_ERROR), windowsAvailable: 0, largestBlock: 0n, pageMask: 0, migrationCapable: 0 };
    }
    return {
      status: this.rtas('ibm,query-pe-dma-window', args, RTAS_SUCCESS),
      windowsAvailable: this.profile.windowsPerPhb - phb.enabledWindows,
      largestBlock: this.profile.largestBlock,
      pageMask: queryPageMask(this.profile),
      migrationCapable: 0,
    };
  }

  /** ibm,create-pe-dma-window: enables the first disabled table of the PHB. */
  createPeDmaWindow(cfgAddr: number, buidHi: number, buidLo: number, pageShift: number, windowShift: number): CreateResult {
    const phb = this.phbOf(buidHi, buidLo);
    const args = [cfgAddr, buidHi, buidLo, pageShift, windowShift];
    const fail = (rc: number): CreateResult => ({ status: this.rtas('ibm,create-pe-dma-window', args, rc), liobn: 0, addrHi: 0, addrLo: 0 });
    if (!phb || !this.profile.ddw) return fail(RTAS_PARAM_ERROR);
    const free = phb.tables.find((t) => !t.enabled);
    const windows = phb.enabledWindows;
    if (!this.profile.pageShifts.includes(pageShift) || windowShift < pageShift) return fail(RTAS_PARAM_ERROR);
    if (!free || windows === this.profile.windowsPerPhb) return fail(RTAS_HW_ERROR);
    const winAddr = windows === 0 ? 0n : this.profile.dma64WinAddr;
    if (!free.enable(pageShift, winAddr, 1n << BigInt(windowShift - pageShift))) return fail(RTAS_HW_ERROR);
    return {
      status: this.rtas('ibm,create-pe-dma-window', args, RTAS_SUCCESS),
      liobn: free.liobn,
      addrHi: Number(winAddr >> 32n),
      addrLo: Number(winAddr & 0xffffffffn),
    };
  }

  /** ibm,remove-pe-dma-window(liobn): any enabled window, the default one included. */
  removePeDmaWindow(liobn: number): number {
    const t = this.byLiobn.get(liobn);
    if (!t || !this.profile.ddw || !t.enabled) return this.rtas('ibm,remove-pe-dma-window', [liobn], RTAS_PARAM_ERROR);
    t.disable();
    return this.rtas('ibm,remove-pe-dma-window', [liobn], RTAS_SUCCESS);
  }

  /** ibm,reset-pe-dma-window: back to the default window alone. */
  resetPeDmaWindow(cfgAddr: number, buidHi: number, buidLo: number): number {
    const phb = this.phbOf(buidHi, buidLo);
    const args = [cfgAddr, buidHi, buidLo];
    if (!phb || !this.profile.ddw) return this.rtas('ibm,reset-pe-dma-window', args, RTAS_PARAM_ERROR);
    this.dmaReset(phb);
    return this.rtas('ibm,reset-pe-dma-window', args, RTAS_SUCCESS);
  }
}

/**
 * Write npages consecutive entries from ioba, stopping at the first one past the window (the
 * earlier ones stay written, as QEMU does): H_SUCCESS, or H_PARAMETER when none or not all fit.
 */
function fillEntries(t: SpaprTceTable, ioba: bigint, npages: number, valueAt: (k: number) => bigint): number {
  let rc = H_PARAMETER;
  for (let k = 0; k < npages; k++) {
    const i = t.index(ioba + (BigInt(k) << BigInt(t.pageShift)));
    if (i < 0) return H_PARAMETER;
    t.set(i, valueAt(k));
    rc = H_SUCCESS;
  }
  return rc;
}
