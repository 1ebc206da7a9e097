/** A vfio-pci device file: GET_INFO, GET_REGION_INFO (with MSI-X mappable), GET_IRQ_INFO, RESET. */
import { errno } from '../base/errno.js';
import type { KPciDev } from '../kernel/pci.js';
import { copyStructFromUser, copyToUser, type IoctlArg } from '../kernel/uaccess.js';
import {
  encode,
  structs,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_OFFSET_SHIFT,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
} from '../kernel/include/uapi/linux/vfio.js';
import type { VfioGroup } from './group.js';

export class VfioDevice {
  constructor(
    readonly kdev: KPciDev,
    readonly pageSize: number,
  ) {}

  group: VfioGroup | null = null;

  ioctl(cmd: number, arg: IoctlArg): number {
    switch (cmd) {
      case VFIO_DEVICE_GET_INFO:
        return this.getInfo(arg);
      case VFIO_DEVICE_GET_REGION_INFO:
        return this.getRegionInfo(arg);
      case VFIO_DEVICE_GET_IRQ_INFO:
        return this.getIrqInfo(arg);
      case VFIO_DEVICE_RESET:
        return 0;
      default:
        return -errno.ENOTTY;
    }
  }

  private getInfo(arg: IoctlArg): number {
    const cs = copyStructFromUser(arg, 'vfio_device_info', 'num_irqs');
    if (typeof cs === 'number') return cs;
    const p = cs.v;
    const out = encode('vfio_device_info', {
      argsz: p.argsz,
      flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
      num_regions: VFIO_PCI_NUM_REGIONS,
      num_irqs: VFIO_PCI_NUM_IRQS,
    });
    return copyToUser(arg, out.subarray(0, cs.minsz)) ? 0 : -errno.EFAULT;
  }

  private getRegionInfo(arg: IoctlArg): number {
    const cs = copyStructFromUser(arg, 'vfio_region_info', 'offset');
    if (typeof cs === 'number') return cs;
    const p = cs.v;
    const index = Number(p.index);
    if (index >= VFIO_PCI_NUM_REGIONS) return -errno.EINVAL;
    const spec = this.kdev.hw.spec;
    let size = 0;
    let flags = 0;
    let capOffset = 0;
    let cap: Uint8Array | null = null;
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
      size = 4096;
      flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    } else if (index <= 5) {
      const bar = spec.bars?.find((b) => b.index === index);
      if (bar) {
        size = bar.size;
        flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        if (bar.kind !== 'io' && bar.size >= this.pageSize) {
          flags |= VFIO_REGION_INFO_FLAG_MMAP;
          if (spec.msixBar === index) {
            // VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: a header-only capability, version 1.
            cap = new Uint8Array(8);
            new DataView(cap.buffer).setUint16(0, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, true);
            new DataView(cap.buffer).setUint16(2, 1, true);
          }
        }
      }
    }
    const total = structs.vfio_region_info.size + (cap ? cap.length : 0);
    if (cap) {
      flags |= VFIO_REGION_INFO_FLAG_CAPS;
      if (p.argsz >= BigInt(total)) capOffset = structs.vfio_region_info.size;
    }
    const argsz = cap && p.argsz < BigInt(total) ? BigInt(total) : p.argsz;
    const out = encode('vfio_region_info', {
      argsz,
      flags,
      index,
      cap_offset: capOffset,
      size,
      offset: BigInt(index) << VFIO_PCI_OFFSET_SHIFT,
    });
    if (!copyToUser(arg, out.subarray(0, cs.minsz))) return -errno.EFAULT;
    if (cap && capOffset) {
      const full = new Uint8Array(total);
      full.set(out);
      full.set(cap, capOffset);
      if (!copyToUser(arg, full)) return -errno.EFAULT;
    }
    return 0;
  }

  private getIrqInfo(arg: IoctlArg): number {
    const cs = copyStructFromUser(arg, 'vfio_irq_info', 'count');
    if (typeof cs === 'number') return cs;
    const p = cs.v;
    if (p.index >= BigInt(VFIO_PCI_NUM_IRQS)) return -errno.EINVAL;
    const index = Number(p.index);
    const spec = this.kdev.hw.spec;
    const counts = [1, spec.msiVectors ?? 1, spec.msixVectors ?? 0, 1, 1];
    let flags = VFIO_IRQ_INFO_EVENTFD;
    if (index === 0) flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    else if (index !== 2) flags |= VFIO_IRQ_INFO_NORESIZE;
    const out = encode('vfio_irq_info', { argsz: p.argsz, flags, index, count: counts[index]! });
    return copyToUser(arg, out) ? 0 : -errno.EFAULT;
  }
}
