/** The TCE (Translation Control Entry) format shared by PowerNV tables and PAPR hypervisor tables. */

/** The device may read memory (DMA_TO_DEVICE). */
export const TCE_PCI_READ = 0x1;
/** The device may write memory (DMA_FROM_DEVICE). */
export const TCE_PCI_WRITE = 0x2;
export const TCE_PERM_MASK = TCE_PCI_READ | TCE_PCI_WRITE;
export const TCE_ENTRY_SIZE = 8;

/** `tce = (real_address & ~(pgsz-1)) | perm`. */
export function makeTce(realAddr: number, pageShift: number, perm: number): number {
  const page = 2 ** pageShift;
  return realAddr - (realAddr % page) + (perm & TCE_PERM_MASK);
}

/** The permission bits (TCEs are integers below 2^53: `&` sees their low 32 bits). */
export function tcePerm(tce: number): number {
  return tce & TCE_PERM_MASK;
}

/** The real address a TCE points at, its permission bits stripped. */
export function tceAddr(tce: number): number {
  return tce - (tce & TCE_PERM_MASK);
}

/** Kernel DMA directions (enum dma_data_direction). */
export const DMA_BIDIRECTIONAL = 0;
export const DMA_TO_DEVICE = 1;
export const DMA_FROM_DEVICE = 2;
export const DMA_NONE = 3;
export type DmaDirection = 0 | 1 | 2 | 3;

/** iommu_direction_to_tce_perm(). */
export function directionToPerm(dir: DmaDirection): number {
  switch (dir) {
    case DMA_BIDIRECTIONAL:
      return TCE_PCI_READ | TCE_PCI_WRITE;
    case DMA_FROM_DEVICE:
      return TCE_PCI_WRITE;
    case DMA_TO_DEVICE:
      return TCE_PCI_READ;
    default:
      return 0;
  }
}

/** iommu_tce_direction(). */
export function tceDirection(tce: number): DmaDirection {
  const p = tcePerm(tce);
  if (p === 3) return DMA_BIDIRECTIONAL;
  if (p === TCE_PCI_READ) return DMA_TO_DEVICE;
  if (p === TCE_PCI_WRITE) return DMA_FROM_DEVICE;
  return DMA_NONE;
}
