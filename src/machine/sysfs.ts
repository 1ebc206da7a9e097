/**
 * The sysfs knobs a test harness uses to move a PCI function between vfio-pci and its kernel
 * driver (driver/unbind, driver_override, drivers_probe), and what the kernel driver does with
 * the function once bound: set its DMA mask, register a network interface, allocate DMA rings
 * and exchange packets through the PHB.
 */
import { DMA_BIDIRECTIONAL } from '../hw/tce.js';
import { dmaMapPage, dmaUnmapPage } from '../kernel/dma-api.js';
import type { KPciDev } from '../kernel/pci.js';
import type { Machine } from './machine.js';

const ENODEV = 19;

/** A write to a sysfs file: 0 or an errno. */
export function sysfsWrite(m: Machine, path: string, value: string): number {
  const dev = /^\/sys\/bus\/pci\/devices\/([0-9a-f:.]+)\/(driver\/unbind|driver_override)$/.exec(path);
  if (dev) {
    const d = m.device(dev[1]!);
    if (!d || d.removed) return ENODEV;
    if (dev[2] === 'driver_override') {
      m.driverOverride.set(d.name, value.trim() || null);
      return 0;
    }
    if (!d.driver) return ENODEV;
    unbind(m, d);
    return 0;
  }
  if (path === '/sys/bus/pci/drivers_probe') {
    const d = m.device(value.trim());
    if (!d || d.removed) return ENODEV;
    if (!d.driver) probe(m, d);
    return 0;
  }
  return 2; // ENOENT
}

function unbind(m: Machine, d: KPciDev): void {
  d.driver = null;
  d.driverName = null;
  m.netifs.delete(d.name);
}

/** The driver core's probe: vfio-pci under driver_override, else the function's kernel driver. */
function probe(m: Machine, d: KPciDev): void {
  if (m.driverOverride.get(d.name) === 'vfio-pci') {
    m.bindVfioPci(d.name);
    return;
  }
  const name = d.hw.spec.kernelDriver;
  if (!name || m.bindKernelDriver(d.name)) return;
  d.driverName = name;
  const rc = name === 'e1000e' ? probeE1000e(m, d) : probeVirtioPci(m, d);
  if (rc) {
    m.klog.printk(`${name} ${d.name}: probe with driver ${name} failed with error ${rc}`);
    d.driver = null;
    d.driverName = null;
    return;
  }
  let n = 0;
  while ([...m.netifs.values()].includes(`eth${n}`)) n++;
  m.netifs.set(d.name, `eth${n}`);
}

function dmaSetMask(m: Machine, d: KPciDev, bits: number): number {
  const pe = m.peOf(d);
  return pe ? m.ioda.dmaSetMask(pe, d, (1n << BigInt(bits)) - 1n) : 0;
}

/** e1000e_probe(): 64-bit DMA or nothing. */
function probeE1000e(m: Machine, d: KPciDev): number {
  if (dmaSetMask(m, d, 64)) {
    m.klog.printk(`e1000e ${d.name}: No usable DMA configuration, aborting`);
    return -5;
  }
  return 0;
}

/** virtio_pci_modern_probe(): 64-bit DMA, else 32-bit, else carry on with a warning. */
function probeVirtioPci(m: Machine, d: KPciDev): number {
  if (dmaSetMask(m, d, 64) && dmaSetMask(m, d, 32))
    m.klog.printk(`virtio-pci ${d.name}: Failed to enable 64-bit or 32-bit DMA.  Trying to continue, but this might not work.`);
  return 0;
}

/** `readlink driver` and the network interface of a function. */
export function deviceState(m: Machine, bdf: string): { driver: string; netif: string } {
  const d = m.device(bdf);
  const driver = !d?.driver ? 'none' : d.driver === 'vfio-pci' ? 'vfio-pci' : (d.driverName ?? 'none');
  return { driver, netif: m.netifs.get(bdf) ?? 'none' };
}

/**
 * The network driver at work: `ip link set up` allocates its DMA rings, a DHCP exchange makes the
 * device read a transmit buffer and write a receive buffer. True when every DMA got through.
 */
export function netDeviceDma(m: Machine, bdf: string): boolean {
  const d = m.device(bdf);
  if (!d || !m.netifs.has(bdf)) return false;
  const pa = m.mem.allocPages(0, { kind: 'kernel', label: `${d.driverName} ring` });
  if (pa === null) return false;
  const phys = pa * m.mem.pageSize;
  const dma = dmaMapPage(d, phys, 2048, DMA_BIDIRECTIONAL, m.pageShift, 0, m.log);
  let ok = dma !== null;
  if (dma !== null) {
    ok = d.hw.dmaRead(dma, 64).ok && d.hw.dmaWrite(dma, new Uint8Array(64)).ok;
    dmaUnmapPage(d, dma, 2048, DMA_BIDIRECTIONAL, m.log);
  }
  m.mem.freePages(pa, 0);
  return ok;
}
