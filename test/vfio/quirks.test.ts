import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { QuirkName } from '../../src/kernel/quirks.js';
import { Machine } from '../../src/machine/machine.js';
import * as V from '../../src/kernel/include/uapi/linux/vfio.js';

const BUF = 0x10000000n;
/** VFIO's own container, and the sPAPR container kept in IOMMUFD objects (tcelab's design). */
const CONTAINERS = {
  vfio: {},
  iommufd: { iommufd: 'ppc64' as const, vfioContainer: 'iommufd' as const },
};
type ContainerKind = keyof typeof CONTAINERS;

/**
 * A container with group 0 attached; `on` sets one quirk. Each case runs on VFIO's container and
 * on the sPAPR container kept in IOMMUFD objects, which keeps the container's rules.
 */
function v2(quirk: QuirkName, on: boolean, ct: ContainerKind) {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k', quirks: { [quirk]: on }, ...CONTAINERS[ct] });
  m.bindVfioPci('0000:01:00.0');
  const p = m.sys.spawn('t');
  p.mm.mappings.push({ start: BUF, end: BUF + 0x1000000n, kind: 'anon' }, { start: 0x20000000n, end: 0x20100000n, kind: 'readonly' });
  const c = m.sys.open(p.pid, '/dev/vfio/vfio').ret;
  const g = m.sys.open(p.pid, '/dev/vfio/0').ret;
  const fd = new Uint8Array(4);
  new DataView(fd.buffer).setInt32(0, c, true);
  m.sys.ioctl(p.pid, g, V.VFIO_GROUP_SET_CONTAINER, fd);
  const io = (req: number, arg: bigint | Uint8Array) => m.sys.ioctl(p.pid, c, req, arg);
  return { m, p, c, io };
}

const reg = (vaddr: bigint, size: bigint) => V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr, size });
const map = (iova: bigint, vaddr: bigint, size: bigint, flags = 3) => V.encode('vfio_iommu_type1_dma_map', { argsz: 32, flags, vaddr, iova, size });
const unmap = (iova: bigint, size: bigint) => V.encode('vfio_iommu_type1_dma_unmap', { argsz: 24, iova, size });
const create = (page_shift: number, window_size: bigint, levels: number) =>
  V.encode('vfio_iommu_spapr_tce_create', { argsz: 40, page_shift, window_size, levels });
const remove = (start_addr: bigint) => V.encode('vfio_iommu_spapr_tce_remove', { argsz: 16, start_addr });

function setupV2(quirk: QuirkName, on: boolean, ct: ContainerKind) {
  const t = v2(quirk, on, ct);
  assert.equal(t.io(V.VFIO_SET_IOMMU, 7n).ret, 0);
  assert.equal(t.io(V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(BUF, 0x800000n)).ret, 0);
  return t;
}

for (const ct of Object.keys(CONTAINERS) as ContainerKind[]) {
  test(`unaligned-iova-returns-1: 1 as the kernel returns it, -EINVAL when fixed (${ct} container)`, () => {
    assert.deepEqual(setupV2('unaligned-iova-returns-1', true, ct).io(V.VFIO_IOMMU_MAP_DMA, map(0x50100n, BUF, 0x1000n)), { ret: 1, errno: 0 });
    assert.deepEqual(setupV2('unaligned-iova-returns-1', false, ct).io(V.VFIO_IOMMU_MAP_DMA, map(0x50100n, BUF, 0x1000n)), { ret: -1, errno: 22 });
  });

  test(`no-end-of-window-check: a map straddling the window end succeeds unless fixed (${ct} container)`, () => {
    assert.equal(setupV2('no-end-of-window-check', true, ct).io(V.VFIO_IOMMU_MAP_DMA, map(0x7fff0000n, BUF, 0x20000n)).ret, 0);
    const fixed = setupV2('no-end-of-window-check', false, ct);
    assert.deepEqual(fixed.io(V.VFIO_IOMMU_MAP_DMA, map(0x7fff0000n, BUF, 0x20000n)), { ret: -1, errno: 22 });
    assert.equal(fixed.io(V.VFIO_IOMMU_MAP_DMA, map(0x7fff0000n, BUF, 0x10000n)).ret, 0, 'the last page alone is fine');
  });

  test(`create-locked-vm-leak: a failed TCE_CREATE keeps its charge unless fixed (${ct} container)`, () => {
    for (const on of [true, false]) {
      const t = setupV2('create-locked-vm-leak', on, ct);
      assert.equal(t.io(V.VFIO_IOMMU_SPAPR_TCE_REMOVE, remove(0n)).ret, 0, 'cancel the pending default window');
      const before = t.m.sys.vmlckKb(t.p.pid);
      assert.deepEqual(t.io(V.VFIO_IOMMU_SPAPR_TCE_CREATE, create(16, 1n << 40n, 1)), { ret: -1, errno: 12 });
      assert.equal(t.m.sys.vmlckKb(t.p.pid) - before, on ? 262144 : 0);
    }
  });

  test(`unregister-while-mapped: 0 and a leaked region, or -EBUSY when fixed (${ct} container)`, () => {
    const real = setupV2('unregister-while-mapped', true, ct);
    assert.equal(real.io(V.VFIO_IOMMU_MAP_DMA, map(0n, BUF, 0x10000n)).ret, 0);
    assert.equal(real.io(V.VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, reg(BUF, 0x800000n)).ret, 0);
    assert.deepEqual(real.io(V.VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, reg(BUF, 0x800000n)), { ret: -1, errno: 2 });
    const fixed = setupV2('unregister-while-mapped', false, ct);
    assert.equal(fixed.io(V.VFIO_IOMMU_MAP_DMA, map(0n, BUF, 0x10000n)).ret, 0);
    assert.deepEqual(fixed.io(V.VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, reg(BUF, 0x800000n)), { ret: -1, errno: 16 });
    assert.equal(fixed.io(V.VFIO_IOMMU_UNMAP_DMA, unmap(0n, 0x10000n)).ret, 0);
    assert.equal(fixed.io(V.VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, reg(BUF, 0x800000n)).ret, 0, 'once unmapped it goes');
  });

  test(`remove-any-address: any address inside a window removes it unless fixed (${ct} container)`, () => {
    for (const on of [true, false]) {
      const t = setupV2('remove-any-address', on, ct);
      assert.equal(t.io(V.VFIO_IOMMU_SPAPR_TCE_CREATE, create(16, 1n << 32n, 1)).ret, 0);
      assert.deepEqual(t.io(V.VFIO_IOMMU_SPAPR_TCE_REMOVE, remove((1n << 59n) + 0x10000n)), on ? { ret: 0, errno: 0 } : { ret: -1, errno: 22 });
    }
  });

  test(`v1-pin-write: v1 cannot map read-only memory even for device reads, unless fixed (${ct} container)`, () => {
    for (const on of [true, false]) {
      const t = v2('v1-pin-write', on, ct);
      assert.equal(t.io(V.VFIO_SET_IOMMU, 2n).ret, 0);
      assert.equal(t.io(V.VFIO_IOMMU_ENABLE, 0n).ret, 0);
      const r = t.io(V.VFIO_IOMMU_MAP_DMA, map(0x50000n, 0x20000000n, 0x10000n, V.VFIO_DMA_MAP_FLAG_READ));
      assert.deepEqual(r, on ? { ret: -1, errno: 14 } : { ret: 0, errno: 0 });
    }
  });
}
