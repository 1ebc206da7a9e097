import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Machine } from '../../src/machine/machine.js';
import * as V from '../../src/kernel/include/uapi/linux/vfio.js';

const REQUESTS = Object.keys(V.VFIO_IOCTL_NAMES).map(Number);

/** A machine with a container, a group attached and a device open: every file type. */
function setup() {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k' });
  m.bindVfioPci('0000:01:00.0');
  const p = m.sys.spawn('fuzz');
  p.mm.mappings.push({ start: 0x10000000n, end: 0x11000000n, kind: 'anon' });
  const c = m.sys.open(p.pid, '/dev/vfio/vfio').ret;
  const g = m.sys.open(p.pid, '/dev/vfio/0').ret;
  const fdArg = new Uint8Array(4);
  new DataView(fdArg.buffer).setInt32(0, c, true);
  assert.equal(m.sys.ioctl(p.pid, g, V.VFIO_GROUP_SET_CONTAINER, fdArg).ret, 0);
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_SET_IOMMU, 7n).ret, 0);
  const d = m.sys.ioctl(p.pid, g, V.VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode('0000:01:00.0\0')).ret;
  assert.ok(d >= 0);
  const k = m.sys.open(p.pid, '/dev/kmsg').ret;
  return { m, p, fds: [c, g, d, k, 99] };
}

test('random ioctl bytes at every file type: errno values, never an exception', () => {
  const { m, p, fds } = setup();
  fc.assert(
    fc.property(
      fc.constantFrom(...fds),
      fc.oneof(fc.constantFrom(...REQUESTS), fc.integer({ min: 0, max: 0xffff })),
      fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
      (fd, req, arg) => {
        const r = m.sys.ioctl(p.pid, fd, req, arg);
        assert.ok(Number.isInteger(r.ret) && Number.isInteger(r.errno));
        if (r.ret === -1) assert.ok(r.errno > 0);
      },
    ),
    { numRuns: 3000, seed: 42 },
  );
});

test('bad MAP_DMA arguments get the kernel errno and leave locked_vm untouched', () => {
  const { m, p, fds } = setup();
  const c = fds[0]!;
  const reg = V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr: 0x10000000n, size: 0x100000n });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg).ret, 0);
  const before = m.sys.vmlckKb(p.pid);
  const map = (o: Partial<Record<'argsz' | 'flags' | 'vaddr' | 'iova' | 'size', bigint | number>>) =>
    m.sys.ioctl(
      p.pid,
      c,
      V.VFIO_IOMMU_MAP_DMA,
      V.encode('vfio_iommu_type1_dma_map', { argsz: 32, flags: 3, vaddr: 0x10000000n, iova: 0n, size: 0x10000n, ...o }),
    );
  assert.deepEqual(map({ argsz: 16 }), { ret: -1, errno: 22 });
  assert.deepEqual(map({ flags: 0 }), { ret: -1, errno: 22 });
  assert.deepEqual(map({ flags: 7 }), { ret: -1, errno: 22 });
  assert.deepEqual(map({ iova: 1n << 40n }), { ret: -1, errno: 6 });
  assert.deepEqual(map({ vaddr: 0x20000000n }), { ret: -1, errno: 22 });
  assert.deepEqual(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_MAP_DMA, new Uint8Array(8)), { ret: -1, errno: 14 }, 'a short buffer faults');
  // the lazily created default window is accounted by the first MAP that reaches it
  assert.equal(m.sys.vmlckKb(p.pid), before + 8192);
});

test("another process's container answers EPERM", () => {
  const { m, p, fds } = setup();
  const c = fds[0]!;
  const reg = V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr: 0x10000000n, size: 0x100000n });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg).ret, 0);
  const child = m.sys.fork(p.pid).ret;
  assert.deepEqual(m.sys.ioctl(child, c, V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg), { ret: -1, errno: 1 });
  assert.deepEqual(m.sys.ioctl(p.pid, 1234, V.VFIO_GET_API_VERSION, 0n), { ret: -1, errno: 9 }, 'closed fd: EBADF');
});

test('an UNMAP_DMA of 2^62 bytes is accepted (no end-of-window check) and finishes', () => {
  const { m, p, fds } = setup();
  const c = fds[0]!;
  const reg = V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr: 0x10000000n, size: 0x100000n });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg).ret, 0);
  const map = V.encode('vfio_iommu_type1_dma_map', { argsz: 32, flags: 3, vaddr: 0x10000000n, iova: 0n, size: 0x100000n });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_MAP_DMA, map).ret, 0);
  const unmap = V.encode('vfio_iommu_type1_dma_unmap', { argsz: 24, iova: 0n, size: 1n << 62n });
  assert.deepEqual(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_UNMAP_DMA, unmap), { ret: 0, errno: 0 });
  const create = V.encode('vfio_iommu_spapr_tce_create', { argsz: 40, page_shift: 16, window_size: 1n << 32n, levels: 2 });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_TCE_CREATE, create).ret, 0);
  const unmap2 = V.encode('vfio_iommu_type1_dma_unmap', { argsz: 24, iova: 1n << 59n, size: (1n << 63n) - (1n << 16n) });
  assert.deepEqual(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_UNMAP_DMA, unmap2), { ret: 0, errno: 0 });
});
