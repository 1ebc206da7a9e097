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
  dmaMask: bigint;
  /** dev.archdata.iommu_bypass: the DMA API maps directly (phys + dma_offset). */
  bypass = false;
  maxSegSize = PCI_DMA_MAX_SEG_SIZE;
  segBoundaryMask = PCI_DMA_SEG_BOUNDARY;
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
    this.dmaMask = hw.spec.dmaMask;
    this.name = hw.name;
  }

  get isBridge(): boolean {
    return this.hw.spec.isBridge ?? false;
  }
}
