/**
 * What differs between PAPR hypervisors for DMA: how many windows a PHB offers, the IOMMU page
 * sizes, the default 32-bit window, where 64-bit windows start, DDW and EEH availability.
 */
import { GiB } from '../../base/bits.js';

export interface HypervisorProfile {
  readonly name: string;
  /** Windows (TCE tables) per PHB, the default one included (SPAPR_PCI_DMA_MAX_WINDOWS). */
  readonly windowsPerPhb: number;
  /** IOMMU page shifts the PHB accepts (its `pgsz` property). */
  readonly pageShifts: readonly number[];
  /** Size of the default window at bus address 0 (`ibm,dma-window`), 4K pages. */
  readonly defaultWindowSize: bigint;
  /** Where a window goes when another one is enabled (dma64_win_addr). */
  readonly dma64WinAddr: bigint;
  /** Largest block a query reports, in TCEs (6-output form). */
  readonly largestBlock: bigint;
  /** Dynamic DMA windows offered (spapr-pci-host-bridge.ddw). */
  readonly ddw: boolean;
  /** EEH offered for emulated devices (QEMU: only for VFIO passthrough). */
  readonly eehForEmulated: boolean;
  /**
   * H_PUT_TCE_INDIRECT and H_STUFF_TCE offered ("hcall-multi-tce" in ibm,hypertas-functions;
   * the guest's FW_FEATURE_PUT_TCE_IND | FW_FEATURE_STUFF_TCE). Without them both are H_FUNCTION.
   */
  readonly multiTce: boolean;
}

/** QEMU 7.2 `-machine pseries` as recorded in ../shared/oracle-pseries. */
export const QEMU_7_2: HypervisorProfile = {
  name: 'qemu-7.2',
  windowsPerPhb: 2,
  pageShifts: [12, 16, 21, 24],
  defaultWindowSize: BigInt(GiB),
  dma64WinAddr: 1n << 59n,
  largestBlock: 1n << 37n,
  ddw: true,
  eehForEmulated: false,
  multiTce: true,
};

export const HYPERVISOR_PROFILES: Record<string, HypervisorProfile> = { 'qemu-7.2': QEMU_7_2 };

/** LoPAR query page-size bits (ibm,query-pe-dma-window output "page size"): 2M is bit 8. */
const QUERY_BITS: Record<number, number> = { 12: 0x1, 16: 0x2, 24: 0x4, 25: 0x8, 26: 0x10, 27: 0x20, 28: 0x40, 34: 0x80, 21: 0x100 };

export function queryPageMask(p: HypervisorProfile): number {
  return p.pageShifts.reduce((m, s) => m | (QUERY_BITS[s] ?? 0), 0);
}
