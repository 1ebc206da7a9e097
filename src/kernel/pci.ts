/** The kernel's view of a PCI function: struct pci_dev with its DMA state and driver binding. */
import type { PciFunction } from '../hw/pci-device.js';
import { PCI_DMA_MAX_SEG_SIZE, PCI_DMA_SEG_BOUNDARY, type DmaDevice } from './dma-api.js';
import type { IommuTable } from './iommu-table.js';

export type DriverName = 'vfio-pci' | 'kernel' | null;

export class KPciDev implements DmaDevice {
  /** set_iommu_table_base(): a plain pointer, not a reference. */
  table: IommuTable | null = null;
  /** dev.archdata.dma_offset. */
  dmaOffset = 0n;
  /** dev.archdata.iommu_bypass: the DMA API maps directly (phys + dma_offset). */
  bypass = false;
  maxSegSize = PCI_DMA_MAX_SEG_SIZE;
  private mask: bigint;
  private boundary = PCI_DMA_SEG_BOUNDARY;
  /** The page shift of the masks in pages below (-1: none since a mask changed). */
  private pagesShift = -1;
  private maskInPages = 0;
  private boundaryInPages = 0;
  driver: DriverName = null;
  /** The kernel driver's name while one is bound ("e1000e"). */
  driverName: string | null = null;
  /** PCI_COMMAND as firmware left it (SERR enabled). */
  command = 0x0100;
  /** Open VFIO device files. */
  openCount = 0;
  /** The iommu_group number. */
  group: number | null = null;
  /** Removed by hotplug. */
  removed = false;

  readonly name: string;

  constructor(readonly hw: PciFunction) {
    this.mask = hw.spec.dmaMask;
    this.name = hw.name;
  }

  /** *dev->dma_mask. */
  get dmaMask(): bigint {
    return this.mask;
  }

  set dmaMask(mask: bigint) {
    this.mask = mask;
    this.pagesShift = -1;
  }

  /** dma_get_seg_boundary(dev). */
  get segBoundaryMask(): bigint {
    return this.boundary;
  }

  set segBoundaryMask(mask: bigint) {
    this.boundary = mask;
    this.pagesShift = -1;
  }

  /** dmaMask >> shift, kept for the last shift asked until a mask changes. */
  maskPages(shift: number): number {
    if (shift !== this.pagesShift) this.shiftMasks(shift);
    return this.maskInPages;
  }

  /** dma_get_seg_boundary_nr_pages(dev, shift), kept as maskPages() is. */
  boundaryPages(shift: number): number {
    if (shift !== this.pagesShift) this.shiftMasks(shift);
    return this.boundaryInPages;
  }

  private shiftMasks(shift: number): void {
    this.pagesShift = shift;
    this.maskInPages = Number(this.mask >> BigInt(shift));
    this.boundaryInPages = Number(this.boundary >> BigInt(shift)) + 1;
  }

  get isBridge(): boolean {
    return this.hw.spec.isBridge ?? false;
  }
}
