/** struct pnv_ioda_pe and struct pnv_phb (the kernel's side of a PHB), with pe_info() logging. */
import type { Phb } from '../../hw/phb.js';
import type { KPciDev } from '../pci.js';
import { TableGroupBase, type TableGroupOps } from '../table-group.js';

export const PNV_IODA_PE_DEV = 1 << 0;
export const PNV_IODA_PE_BUS = 1 << 1;
export const PNV_IODA_PE_BUS_ALL = 1 << 2;
export const PNV_IODA_PE_VF = 1 << 5;

export class PnvPhb {
  /** PEs in use, by number. */
  readonly pes = new Map<number, Pe>();
  /** pe_alloc bitmap. */
  readonly peAlloc: boolean[];
  /** M64 segments already handed to PEs (segment number = PE number). */
  nextM64Segment = 0;

  constructor(
    readonly hw: Phb,
    /** Bus address where the 32-bit MMIO window starts (ioda.m32_pci_base). */
    readonly m32PciBase: number,
  ) {
    this.peAlloc = new Array(hw.numPes).fill(false);
    this.peAlloc[hw.reservedPe] = true;
  }

  get opalId(): number {
    return this.hw.index;
  }

  /** hose->global_number, also the PCI domain. */
  get globalNumber(): number {
    return this.hw.index;
  }

  /** pnv_ioda_alloc_pe(): scans backwards for a free PE number. */
  allocPe(): number | null {
    for (let pe = this.peAlloc.length - 1; pe >= 0; pe--) {
      if (!this.peAlloc[pe]) {
        this.peAlloc[pe] = true;
        return pe;
      }
    }
    return null;
  }

  /** pnv_ioda_reserve_pe(). */
  reservePe(pe: number): void {
    this.peAlloc[pe] = true;
  }
}

export class Pe extends TableGroupBase {
  readonly tceBypassBase = 1n << 59n;
  tceBypassEnabled = false;
  dmaSetupDone = false;

  constructor(
    readonly phb: PnvPhb,
    readonly peNumber: number,
    readonly flags: number,
    /** The single device of a device PE. */
    readonly pdev: KPciDev | null,
    /** The bus of a bus PE. */
    readonly pbus: number | null,
    readonly ops: TableGroupOps,
  ) {
    super();
  }

  get label(): string {
    return `PHB${this.phb.globalNumber} PE#${this.peNumber.toString(16)}`;
  }

  /** The prefix pe_level_printk() puts before a PE's messages. */
  get pfix(): string {
    if (this.flags & PNV_IODA_PE_DEV && this.pdev) return this.pdev.name;
    const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
    return `${h(this.phb.globalNumber, 4)}:${h(this.pbus ?? 0, 2)}     `;
  }

  /** `pci <pfix>: [PE# nn] `, made on the first message (what it is made of never changes). */
  private prefix: string | undefined;

  /** pe_info(): `pci <pfix>: [PE# nn] <msg>`. */
  message(msg: string): string {
    this.prefix ??= `pci ${this.pfix}: [PE# ${this.peNumber.toString(16).padStart(2, '0')}] `;
    return this.prefix + msg;
  }
}
