/**
 * A pSeries PE: the device-tree node that carries a DMA window (one per QEMU PHB), its
 * iommu_table_group, and the DMA properties the guest kernel adds and removes on that node.
 */
import type { SpaprPhb } from '../../firmware/papr/hypervisor.js';
import type { KPciDev } from '../pci.js';
import { TableGroupBase, type TableGroupOps } from '../table-group.js';

/** ibm,dma-window as parsed by of_parse_dma_window(). */
export interface DmaWindowProp {
  liobn: number;
  offset: bigint;
  size: bigint;
}

/** linux,direct64-ddr-window-info / linux,dma64-ddr-window-info (struct dynamic_dma_window_prop). */
export interface DdwProp {
  name: 'linux,direct64-ddr-window-info' | 'linux,dma64-ddr-window-info';
  liobn: number;
  dmaBase: bigint;
  tceShift: number;
  windowShift: number;
}

/** maxDynamicWindowsSupported stays 0 until spapr_tce_init_table_group(); -1 (0xffffffff to userspace) without DDW. */
export class PseriesPe extends TableGroupBase {
  /** The node's "ibm,dma-window" (null once the kernel removed it) and its saved copy. */
  dmaWindow: DmaWindowProp | null;
  dmaWindowSaved: DmaWindowProp | null = null;
  /** The node's 64-bit window property, also its dma_win_list entry. */
  ddw: DdwProp | null = null;
  readonly ddwApplicable: [number, number, number] | null;
  readonly ddwExtensions: number[] | null;

  constructor(
    readonly phb: SpaprPhb,
    readonly ops: TableGroupOps,
    props: { dmaWindow: DmaWindowProp; ddwApplicable: [number, number, number] | null; ddwExtensions: number[] | null },
  ) {
    super();
    this.dmaWindow = props.dmaWindow;
    this.ddwApplicable = props.ddwApplicable;
    this.ddwExtensions = props.ddwExtensions;
  }

  /** The node's full name, as %pOF prints it. */
  get node(): string {
    return `/pci@${this.phb.buid.toString(16)}`;
  }

  get label(): string {
    return this.node;
  }

  /** The first PCI device of the group (iommu_group_get_first... in spapr_tce_create_table). */
  get pdev(): KPciDev {
    return this.devices[0]!;
  }

  /** config address of a function: (bus << 16) | (devfn << 8). */
  static cfgAddr(d: KPciDev): number {
    const a = d.hw.spec.addr;
    return (a.bus << 16) | (((a.dev << 3) | a.fn) << 8);
  }
}
