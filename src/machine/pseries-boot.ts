/**
 * Boot of a pSeries LPAR: one PE per spapr PHB (its device-tree node carries the DMA window),
 * the default table and IOMMU group of each, then the built-in drivers that ask for 64-bit DMA
 * and so run enable_ddw().
 */
import type { PaprHypervisor } from '../firmware/papr/hypervisor.js';
import type { PseriesIommu } from '../kernel/pseries/iommu.js';
import type { KPciDev } from '../kernel/pci.js';
import { PseriesPe } from '../kernel/pseries/pe.js';
import type { Machine } from './machine.js';

/** The kernel driver of each device model, as dev_info() names it. */
const KERNEL_DRIVERS: Record<string, string> = { 'virtio-net': 'virtio-pci', e1000e: 'e1000e' };
/** Those built into the recorded guest kernel (e1000e is a module its initramfs never loads). */
const BUILTIN = new Set(['virtio-pci']);

export function kernelDriverName(d: KPciDev): string {
  return KERNEL_DRIVERS[d.hw.spec.model] ?? 'pci';
}

export function bootPseries(m: Machine, hv: PaprHypervisor, iommu: PseriesIommu): void {
  const pes: PseriesPe[] = [];
  for (const [i, phb] of hv.phbs.entries()) {
    const devs = m.devices.filter((d) => d.hw.phb.index === i && !d.isBridge);
    if (!devs.length) continue;
    const pe = new PseriesPe(phb, iommu, hv.dtProperties(phb));
    pe.devices.push(...devs);
    iommu.setupPe(pe);
    m.registerGroup(pe, devs);
    for (const d of devs) {
      d.group = pe.groupId;
      d.driver = 'kernel';
      m.klog.printk(`pci ${d.name}: Adding to iommu group ${pe.groupId}`);
    }
    pes.push(pe);
  }
  for (const pe of pes) {
    for (const d of pe.devices) {
      const driver = kernelDriverName(d);
      if (BUILTIN.has(driver)) iommu.enableDdw(pe, d, driver, 64);
    }
  }
  if (!hv.profile.eehForEmulated) m.klog.printk('EEH: No capable adapters found: recovery disabled');
}
