/**
 * The pSeries guest over the PAPR hypervisor: boot-time DDW negotiation with and without
 * hot-pluggable memory, GET_INFO without DDW, and the two window quirks with their fixes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PseriesPe } from '../../src/kernel/pseries/pe.js';
import { Machine, type MachineOptions } from '../../src/machine/machine.js';
import * as V from '../../src/kernel/include/uapi/linux/vfio.js';
import { openV2Container } from '../vfio/v2-container.js';

const GiB = 2 ** 30;

function pseries(opts: Partial<MachineOptions> = {}): Machine {
  return new Machine({ preset: 'pseries', pageSize: '64k', ...opts });
}

function pe(m: Machine, group: number): PseriesPe {
  return m.groups[group]!.tableGroup as PseriesPe;
}

/** A v2 container holding group 0, as a VFIO user sets it up. */
function v2Container(m: Machine) {
  for (const d of m.devices) m.bindVfioPci(d.name);
  const p = m.sys.spawn('user');
  const c = openV2Container(m, p.pid);
  return { p, c };
}

test('boot without maxmem: virtio-pci asks for window_shift 0, gets -3, and its PE lands on the failed list', () => {
  const m = pseries();
  assert.deepEqual(
    m.klog.lines.filter((l) => /ibm,|iommu group/.test(l)),
    [
      'pci 0000:00:01.0: ibm,query-pe-dma-windows(2026) 800 8000000 20000000 returned 0, lb=2000000000 ps=107 wn=1',
      'pci 0000:00:01.0: Adding to iommu group 0',
      'pci 0001:00:01.0: ibm,query-pe-dma-windows(2026) 800 8000000 20000001 returned 0, lb=2000000000 ps=107 wn=1',
      'pci 0001:00:01.0: Adding to iommu group 1',
      'virtio-pci 0001:00:01.0: ibm,query-pe-dma-windows(2026) 800 8000000 20000001 returned 0, lb=2000000000 ps=107 wn=1',
      'virtio-pci 0001:00:01.0: ibm,create-pe-dma-window(2027) 800 8000000 20000001 18 0 returned -3 (liobn = 0x0 starting addr = 0 0)',
    ],
  );
  assert.deepEqual(
    [...m.pseries!.failedDdw].map((x) => x.node),
    ['/pci@800000020000001'],
  );
  const a = pe(m, 0);
  assert.equal(a.tce32Size, GiB);
  assert.equal(a.pgsizes, 0x1211000n);
  assert.equal(a.maxDynamicWindowsSupported, 2);
  assert.equal(a.maxLevels, 1);
});

test('boot with maxmem=4G: a direct-mapped 4 GiB window of 16M pages at 1<<59 covering all RAM', () => {
  const m = pseries({ maxmemBytes: 4 * GiB });
  assert.ok(
    m.klog.lines.includes(
      'virtio-pci 0001:00:01.0: ibm,create-pe-dma-window(2027) 800 8000000 20000001 18 20 returned 0 (liobn = 0x80000101 starting addr = 8000000 0)',
    ),
  );
  assert.ok(m.klog.lines.includes('virtio-pci 0001:00:01.0: lsa_required: 0, lsa_enabled: 0, direct mapping: 1'));
  assert.equal(m.pseries!.failedDdw.size, 0);
  const t = m.papr!.table(0x80000101)!;
  assert.equal(t.busOffset, 1n << 59n);
  assert.equal(t.used, (2 * GiB) / 2 ** 24, 'every 16M page of RAM');
  assert.equal(m.device('0001:00:01.0')!.dmaOffset, 1n << 59n);
});

test('building TCEs batches 512 per H_PUT_TCE_INDIRECT; a single TCE is one H_PUT_TCE', () => {
  const m = pseries();
  const calls: string[] = [];
  m.log.subscribe((e) => e.kind === 'hcall' && calls.push(e.call), { verbose: true });
  const tbl = pe(m, 0).tables[0]!;
  tbl.ops.set(tbl, 0, 1100, 0x100000, 0);
  assert.deepEqual(calls, ['H_PUT_TCE_INDIRECT', 'H_PUT_TCE_INDIRECT', 'H_PUT_TCE_INDIRECT']);
  assert.equal(m.papr!.table(tbl.itIndex)!.used, 1100);
  calls.length = 0;
  tbl.ops.set(tbl, 2000, 1, 0x100000, 0);
  tbl.ops.clear(tbl, 0, 1100);
  assert.deepEqual(calls, ['H_PUT_TCE', 'H_STUFF_TCE', 'H_STUFF_TCE', 'H_STUFF_TCE']);
  assert.equal(m.papr!.table(tbl.itIndex)!.used, 1);
});

test('ddw=off: no query at boot; GET_INFO offers 4K pages, 0xffffffff windows and 0 levels', () => {
  const m = pseries({ ddw: false });
  assert.equal(m.klog.lines.filter((l) => l.includes('ibm,')).length, 0);
  const a = pe(m, 0);
  assert.equal(a.pgsizes, 0x1000n);
  assert.equal(a.maxDynamicWindowsSupported, -1);
  assert.equal(a.maxLevels, 0);
  assert.equal(m.papr!.phbs[0]!.tables.length, 1);
});

test('the hypervisor keeps the default window the guest removed; fixed, it goes', () => {
  for (const kept of [true, false]) {
    const m = pseries({ quirks: { 'default-window-kept-by-hypervisor': kept } });
    v2Container(m);
    assert.equal(pe(m, 0).dmaWindow, null, 'the guest dropped ibm,dma-window');
    assert.equal(m.papr!.table(0x80000000)!.enabled, kept);
  }
});

test('a failed create poisons the PE until reboot; fixed, the next create is tried again', () => {
  for (const sticky of [true, false]) {
    const m = pseries({ quirks: { 'failed-ddw-sticky': sticky } });
    const { p, c } = v2Container(m);
    const create = (windowSize: bigint) => {
      const buf = V.encode('vfio_iommu_spapr_tce_create', { argsz: 40, page_shift: 16, window_size: windowSize, levels: 1 });
      return m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_TCE_CREATE, buf);
    };
    const remove = (start: bigint) => {
      const buf = V.encode('vfio_iommu_spapr_tce_remove', { argsz: 16, start_addr: start });
      return m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_TCE_REMOVE, buf).ret;
    };
    assert.equal(create(1n << 32n).ret, 0, 'a DDW beside the default window');
    assert.equal(remove(0n), 0, 'the guest removes the default window; the hypervisor keeps it');
    assert.equal(remove(1n << 59n), 0);
    assert.equal(create(1n << 30n).ret, 0, 'slot 0 gets the one window the hypervisor has left');
    assert.equal(create(1n << 32n).errno, 19, 'none left for slot 1: RTAS -1 → ENODEV');
    assert.equal(remove(1n << 59n), 0);
    const third = create(1n << 30n);
    assert.equal(third.ret === 0, !sticky);
    if (sticky) assert.ok(m.klog.lines.at(-1)!.endsWith('/pci@800000020000000 in failed DDW device list'));
  }
});

test('bad input from VFIO never reaches the hypervisor: a MAP past a window is ENXIO with no hcall', () => {
  const m = pseries();
  const { p, c } = v2Container(m);
  p.mm.mappings.push({ start: 0x10000000n, end: 0x11000000n, kind: 'anon' });
  const reg = V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr: 0x10000000n, size: 0x100000n });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg).ret, 0);
  const map = (iova: bigint) =>
    m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_MAP_DMA, V.encode('vfio_iommu_type1_dma_map', { argsz: 32, flags: 3, vaddr: 0x10000000n, iova, size: 0x10000n }));
  assert.equal(map(0n).ret, 0, 'the lazy default window');
  const hv = () => JSON.stringify(m.papr!.phbs.flatMap((ph) => ph.tables.map((t) => [t.liobn, t.nbTable, String(t.busOffset), t.used])));
  const before = hv();
  const hcalls = m.log.counts.get('firmware.hcall');
  assert.equal(map(BigInt(GiB)).errno, 6, 'just past the 1 GiB default window: ENXIO');
  assert.equal(map(1n << 59n).errno, 6, 'no DDW yet');
  assert.equal(m.log.counts.get('firmware.hcall'), hcalls);
  assert.equal(hv(), before);
});

test('a TCE the hypervisor refused (its window gone behind the guest) is reported by hypervisor-accepted-tces', async () => {
  const { Checker } = await import('../../src/check/invariants.js');
  const m = pseries();
  const checker = new Checker(m);
  const d = m.device('0000:00:01.0')!;
  assert.equal(m.papr!.removePeDmaWindow(0x80000000), 0);
  const { dmaMapPage } = await import('../../src/kernel/dma-api.js');
  const pfn = m.mem.allocPages(0, { kind: 'kernel', label: 'buf' })!;
  assert.notEqual(dmaMapPage(d, pfn * m.mem.pageSize, 8192, 0, m.pageShift, 0, m.log), null, 'the guest ignores the H_PARAMETER');
  checker.checkState();
  assert.deepEqual([...new Set(checker.violations.map((v) => v.invariant))], ['hypervisor-accepted-tces']);
});
