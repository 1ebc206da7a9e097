/**
 * The unchecked userspace view of pSeries spapr_tce_create_table(): a 2^28-TCE window in a
 * 2 GiB guest gets no view, the create returns 0 anyway, and the next MAP_DMA oopses in
 * tce_iommu_ioctl. The task dies holding the container's group_lock; whatever needs that lock
 * later sleeps forever, and the model says so instead of waiting. Fixed, the create fails with
 * -ENOMEM and takes its window back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PseriesPe } from '../../src/kernel/pseries/pe.js';
import { Machine, type MachineOptions } from '../../src/machine/machine.js';
import * as V from '../../src/kernel/include/uapi/linux/vfio.js';
import { totalramPages } from '../../src/kernel/vmalloc.js';
import { openV2Container } from '../vfio/v2-container.js';

const MEM = 0x10000000n;
const DDW = 1n << 59n;

function setup(opts: Partial<MachineOptions> = {}) {
  const m = new Machine({ preset: 'pseries', pageSize: '64k', ...opts });
  for (const d of m.devices) m.bindVfioPci(d.name);
  const p = m.sys.spawn('user');
  p.mm.mappings.push({ start: MEM, end: MEM + 0x1000000n, kind: 'anon' });
  const c = openV2Container(m, p.pid);
  const reg = V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr: MEM, size: 0x100000n });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg).ret, 0);
  const create = (pid: number, pageShift: number, windowSize: bigint) =>
    m.sys.ioctl(
      pid,
      c,
      V.VFIO_IOMMU_SPAPR_TCE_CREATE,
      V.encode('vfio_iommu_spapr_tce_create', { argsz: 40, page_shift: pageShift, window_size: windowSize, levels: 1 }),
    );
  const map = (pid: number, iova: bigint) =>
    m.sys.ioctl(pid, c, V.VFIO_IOMMU_MAP_DMA, V.encode('vfio_iommu_type1_dma_map', { argsz: 32, flags: 3, vaddr: MEM, iova, size: 0x10000n }));
  const info = (pid: number) =>
    m.sys.ioctl(pid, c, V.VFIO_IOMMU_SPAPR_TCE_GET_INFO, V.encode('vfio_iommu_spapr_tce_info', { argsz: V.structs.vfio_iommu_spapr_tce_info.size }));
  return { m, p, c, create, map, info };
}

test('totalram_pages: RAM less its memmap, so a view as large as RAM exceeds it', () => {
  for (const pageSize of ['64k', '4k'] as const) {
    const m = new Machine({ preset: 'pseries', pageSize });
    const ram = m.mem.totalPages;
    assert.equal(totalramPages(m.mem), ram - (ram * 64) / m.mem.pageSize);
    assert.ok(2 ** 31 / m.mem.pageSize > totalramPages(m.mem), 'a 2 GiB view does not fit a 2 GiB guest');
    assert.ok(2 ** 27 / m.mem.pageSize <= totalramPages(m.mem), 'a 128 MiB view (2^24 TCEs) does');
  }
});

test('unchecked-userspace-view: the create returns 0 without a view, the MAP oopses and the task dies holding the lock', () => {
  const { m, p, create, map } = setup();
  const oopses: unknown[] = [];
  m.log.subscribe((e) => e.kind === 'oops' && oopses.push({ pid: e.pid, fn: e.fn, signal: e.signal }));
  assert.equal(create(p.pid, 12, 1n << 40n).ret, 0, '4K pages, 1T, 1 level: 0 although vzalloc failed');
  assert.ok(
    m.klog.lines.includes(
      'user: vmalloc error: size 2147483648, exceeds total pages, mode:0xdc0(GFP_KERNEL|__GFP_ZERO), nodemask=(null),cpuset=/,mems_allowed=0',
    ),
  );
  assert.equal(m.papr!.table(0x80000001)!.enabled, true, 'the hypervisor made the window');
  const r = map(p.pid, DDW);
  assert.equal(r.signal, 11);
  assert.deepEqual(oopses, [{ pid: p.pid, fn: 'tce_iommu_ioctl', signal: 11 }]);
  const tail = m.klog.lines.slice(m.klog.lines.indexOf('BUG: Kernel NULL pointer dereference on write at 0x00000000'));
  assert.ok(tail.includes('Oops: Kernel access of bad area, sig: 11 [#1]'));
  assert.ok(tail.some((l) => / tce_iommu_ioctl\+0x0\/0x0 \[vfio_iommu_spapr_tce\]$/.test(l)));
  assert.equal(tail.at(-1), `note: user[${p.pid}] exited with irqs disabled`);
  assert.equal(m.papr!.table(0x80000001)!.get(0) !== 0n, true, 'the TCE was written before the store through NULL');
  // Its exit releases the group, which waits for the container lock the task itself still holds.
  assert.equal(p.exited, false);
  assert.match(p.stuck!, /^container group_lock held by pid \d+ \(user\), dead in tce_iommu_ioctl$/);
  assert.equal(m.sys.ioctl(p.pid, 3, V.VFIO_CHECK_EXTENSION, 7n).blocked, p.stuck, 'a stuck task makes no more calls');
  // Anyone else who needs that group's lock sleeps too; the other group is untouched.
  const q = m.sys.spawn('other');
  const o = m.sys.open(q.pid, '/dev/vfio/0');
  assert.equal(o.ret, -1);
  assert.match(o.blocked!, /^group 0 group_lock held by pid \d+ \(user\)$/);
  assert.equal(q.stuck, o.blocked);
  const q2 = m.sys.spawn('third');
  assert.ok(m.sys.open(q2.pid, '/dev/vfio/1').ret >= 0);
});

test('unchecked-userspace-view: a forked sibling still reads the container until a writer queues', () => {
  const { m, p, create, map, info } = setup();
  const child = m.sys.fork(p.pid).ret;
  assert.equal(create(p.pid, 12, 1n << 40n).ret, 0);
  assert.equal(map(p.pid, DDW).signal, 11);
  assert.equal(p.exited, true, 'the group file is shared: the dying task releases nothing that waits');
  assert.equal(info(child).errno, 1, 'group_lock is only read-held: another reader gets in (EPERM: not its mm)');
  assert.equal(m.sys.ioctl(child, 3, V.VFIO_CHECK_EXTENSION, 7n).ret, 1);
  const unset = m.sys.ioctl(child, 4, V.VFIO_GROUP_UNSET_CONTAINER, 0n);
  assert.match(unset.blocked!, /container group_lock held by pid \d+ \(user\), dead in tce_iommu_ioctl/);
  const q = m.sys.spawn('other');
  assert.ok(m.sys.open(q.pid, '/dev/vfio/0').blocked, 'the sleeping unsetter holds group 0 group_lock');
});

test('unchecked-userspace-view fixed: the create fails with ENOMEM and the hypervisor window goes again', () => {
  const { m, p, create, map } = setup({ quirks: { 'unchecked-userspace-view': false, 'create-locked-vm-leak': false } });
  const before = m.sys.vmlckKb(p.pid);
  const r = create(p.pid, 12, 1n << 40n);
  assert.equal(r.errno, 12);
  assert.equal(m.papr!.table(0x80000001)!.enabled, false);
  assert.equal((m.groups[0]!.tableGroup as PseriesPe).ddw, null);
  assert.equal(m.sys.vmlckKb(p.pid), before + 2048, 'only the default window (4K pages, 1 GiB) stays charged');
  assert.equal(map(p.pid, DDW).errno, 6, 'no window at 1<<59: ENXIO');
  assert.equal(m.klog.lines.filter((l) => l.startsWith('Oops')).length, 0);
  assert.equal(create(p.pid, 16, 1n << 32n).ret, 0, 'the freed hypervisor window can be created again');
  assert.equal(map(p.pid, DDW).ret, 0);
});
