import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DMA_FROM_DEVICE } from '../../src/hw/tce.js';
import { dmaMapPage } from '../../src/kernel/dma-api.js';
import { Machine } from '../../src/machine/machine.js';
import * as V from '../../src/kernel/include/uapi/linux/vfio.js';

/** VFIO takes the bus PE of the two legacy NICs and gives it back; then a kernel driver DMAs again. */
function vfioRoundTrip(staleTablePointer: boolean) {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k', topology: 'tour', quirks: { 'stale-table-pointer': staleTablePointer } });
  const nic = m.device('0002:02:00.0')!;
  const pe = m.peOf(nic)!;
  const bootTable = nic.table;
  for (const d of pe.devices) if (!d.isBridge) m.bindVfioPci(d.name);
  const p = m.sys.spawn('qemu');
  const c = m.sys.open(p.pid, '/dev/vfio/vfio').ret;
  const g = m.sys.open(p.pid, `/dev/vfio/${pe.groupId}`).ret;
  const fd = new Uint8Array(4);
  new DataView(fd.buffer).setInt32(0, c, true);
  assert.equal(m.sys.ioctl(p.pid, g, V.VFIO_GROUP_SET_CONTAINER, fd).ret, 0);
  const duringVfio = nic.table;
  // A guest's worth of work: the container builds its own tables while it owns the PE.
  p.mm.mappings.push({ start: 0x10000000n, end: 0x11000000n, kind: 'anon' });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_SET_IOMMU, 7n).ret, 0);
  const reg = V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr: 0x10000000n, size: 0x100000n });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg).ret, 0);
  const map = V.encode('vfio_iommu_type1_dma_map', { argsz: 32, flags: 3, vaddr: 0x10000000n, iova: 0n, size: 0x100000n });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_MAP_DMA, map).ret, 0);
  m.sys.exit(p.pid);
  assert.equal(m.bindKernelDriver(nic.name), 0);
  m.ioda.dmaSetMask(pe, nic, (1n << 32n) - 1n);
  const pfn = m.mem.allocPages(0, { kind: 'kernel', label: 'rx buffer' })!;
  const dma = dmaMapPage(nic, pfn * m.mem.pageSize, 4096, DMA_FROM_DEVICE, m.pageShift, 0, m.log);
  const w = dma === null ? { ok: false } : nic.hw.dmaWrite(dma, new Uint8Array([1, 2, 3, 4]));
  return { m, pe, nic, bootTable, duringVfio, w };
}

test('with the 2017 fix, a bus-PE device gets NULL while VFIO owns the PE and the new table after', () => {
  const { pe, nic, bootTable, duringVfio, w } = vfioRoundTrip(false);
  assert.ok(bootTable);
  assert.equal(duringVfio, null);
  assert.equal(nic.table, pe.tables[0]);
  assert.notEqual(nic.table, bootTable);
  assert.ok(w.ok, 'the 32-bit DMA lands');
});

test('quirk stale-table-pointer: the device keeps its freed boot-time table and its DMA freezes the PE', () => {
  const { m, pe, nic, bootTable, duringVfio, w } = vfioRoundTrip(true);
  assert.equal(duringVfio, bootTable);
  assert.equal(nic.table, bootTable);
  assert.ok(bootTable!.freed, 'the pointer is dangling');
  assert.notEqual(pe.tables[0], bootTable);
  assert.equal(w.ok, false, 'the TCE went into a freed table, not the one the PHB walks');
  assert.ok(m.phbs[pe.phb.globalNumber]!.peState[pe.peNumber]!.dmaFrozen, 'EEH froze the PE');
});

test('ownership: SET_CONTAINER removes the kernel window and disables bypass; closing restores both', () => {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k' });
  m.bindVfioPci('0000:01:00.0');
  const pe = m.peOf(m.device('0000:01:00.0')!)!;
  const p = m.sys.spawn('user');
  const c = m.sys.open(p.pid, '/dev/vfio/vfio').ret;
  const g = m.sys.open(p.pid, '/dev/vfio/0').ret;
  const fd = new Uint8Array(4);
  new DataView(fd.buffer).setInt32(0, c, true);
  const from = m.klog.lines.length;
  assert.equal(m.sys.ioctl(p.pid, g, V.VFIO_GROUP_SET_CONTAINER, fd).ret, 0);
  assert.equal(pe.tables[0], null);
  assert.equal(pe.tceBypassEnabled, false);
  assert.equal(m.phbs[0]!.getTve(pe.peNumber * 2), null);
  m.sys.close(p.pid, g);
  assert.ok(pe.tables[0]);
  assert.equal(pe.tceBypassEnabled, true);
  assert.deepEqual(m.klog.lines.slice(from), [
    'pci 0000:01     : [PE# 1fd] Disabling 64-bit DMA bypass',
    'pci 0000:01     : [PE# 1fd] Removing DMA window #0',
    'pci 0000:01     : [PE# 1fd] Setting up window#0 0..7fffffff pg=10000',
    'pci 0000:01     : [PE# 1fd] Enabling 64-bit DMA bypass',
  ]);
});
