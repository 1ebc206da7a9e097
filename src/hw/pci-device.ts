/** A PCI function behind a PHB, with a DMA engine that moves real bytes through the PHB. */
import type { DmaResult, Phb } from './phb.js';

export interface PciAddress {
  domain: number;
  bus: number;
  dev: number;
  fn: number;
}

export function bdfName(a: PciAddress): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `${h(a.domain, 4)}:${h(a.bus, 2)}:${h(a.dev, 2)}.${a.fn}`;
}

export function parseBdf(s: string): PciAddress | null {
  const m = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/.exec(s);
  if (!m) return null;
  return { domain: parseInt(m[1]!, 16), bus: parseInt(m[2]!, 16), dev: parseInt(m[3]!, 16), fn: parseInt(m[4]!, 16) };
}

export interface PciFunctionSpec {
  addr: PciAddress;
  vendor: number;
  device: number;
  /** Largest DMA address the device can emit (its DMA mask), e.g. 2^32-1 or 2^64-1. */
  dmaMask: bigint;
  /** The function has a 64-bit prefetchable BAR, so firmware places it in the M64 window. */
  m64: boolean;
  /** Memory/IO BARs as firmware sized them. */
  bars?: { index: number; size: number; kind: 'mem32' | 'mem64' | 'io' }[];
  /** The BAR holding the MSI-X table and the vector counts. */
  msixBar?: number;
  msixVectors?: number;
  msiVectors?: number;
  /** QEMU's emulated devices refuse the D3hot transition vfio-pci asks for when idle. */
  refusesD3hot?: boolean;
  /** Human label ("e1000e", "virtio-net"). */
  model: string;
  /** The kernel driver that binds the function when vfio-pci does not ("e1000e", "virtio-pci"). */
  kernelDriver?: string;
  /** The function is a PCIe-to-PCI bridge (its secondary bus forms a bus-all PE). */
  isBridge?: boolean;
}

export class PciFunction {
  readonly name: string;
  /** Requester ID: bus << 8 | devfn. */
  readonly rid: number;

  constructor(
    readonly spec: PciFunctionSpec,
    readonly phb: Phb,
  ) {
    const a = spec.addr;
    this.name = bdfName(a);
    this.rid = (a.bus << 8) | (a.dev << 3) | a.fn;
  }

  dmaRead(bus: bigint, len: number): DmaResult {
    return this.phb.dma(this.name, this.rid, bus, len, false);
  }

  /**
   * A DMA read into the device's own buffer (all of `out`), with no result object: undefined
   * when the data moved, else the fault. `bus` may be a number below 2^53.
   */
  dmaReadInto(bus: bigint | number, out: Uint8Array): string | undefined {
    return this.phb.transfer(this.name, this.rid, bus, out, false);
  }

  dmaWrite(bus: bigint, data: Uint8Array): DmaResult {
    return this.phb.dma(this.name, this.rid, bus, data.length, true, data);
  }
}
