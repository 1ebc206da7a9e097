/**
 * A v2 MAP_DMA maps the pages pinned at REGISTER_MEMORY (tce_iommu_build_v2): the region's
 * mem->pageshift as mm_iommu_do_alloc() computed it, and the compound size of each pinned page.
 * What the process maps at those addresses afterwards plays no part.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { MappingKind, Process } from '../../src/kernel/process.js';
import type { QuirkName } from '../../src/kernel/quirks.js';
import { Machine } from '../../src/machine/machine.js';
import * as V from '../../src/kernel/include/uapi/linux/vfio.js';
import { openV2Container } from './v2-container.js';

const MiB = 1n << 20n;
/** 16 MiB: the hash MMU's hugetlb and THP size, and one segment of the test's regions. */
const SEG = 16n * MiB;
const BASE = 0x1000_0000_0000n;
const KPAGE_SHIFT = 16;

const reg = (vaddr: bigint, size: bigint) => V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr, size });
const map = (iova: bigint, vaddr: bigint, size: bigint) => V.encode('vfio_iommu_type1_dma_map', { argsz: 32, flags: 3, vaddr, iova, size });
const unmap = (iova: bigint, size: bigint) => V.encode('vfio_iommu_type1_dma_unmap', { argsz: 24, iova, size });

/**
 * A hash-MMU 64K machine (16M hugetlb and THP) with these quirks set, and a process `p` forked
 * from one `setup` prepared, with a v2 container on group 0.
 */
function v2Container(setup: (p: Process) => void = () => {}, quirks: Partial<Record<QuirkName, boolean>> = {}) {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k', mmu: 'hash', quirks });
  m.bindVfioPci('0000:01:00.0');
  const parent = m.sys.spawn('t');
  setup(parent);
  const p = m.sys.processes.get(m.sys.fork(parent.pid).ret)!;
  const c = openV2Container(m, p.pid);
  const io = (req: number, arg: bigint | Uint8Array) => m.sys.ioctl(p.pid, c, req, arg);
  return { m, p, io };
}

/** A DDW of 2M IOMMU pages; its start address. */
function ddw2M(io: (req: number, arg: bigint | Uint8Array) => { ret: number }): bigint {
  const c = V.encode('vfio_iommu_spapr_tce_create', { argsz: 40, page_shift: 21, window_size: 1n << 32n, levels: 1 });
  assert.equal(io(V.VFIO_IOMMU_SPAPR_TCE_CREATE, c).ret, 0);
  return V.decode('vfio_iommu_spapr_tce_create', c).start_addr;
}

/**
 * The kernel's answers, written from mm_iommu_do_alloc() and tce_iommu_build_v2(): for a region of
 * 16M segments of these kinds, the answer (0 or -errno) to a 2M map at each segment's start.
 */
function expected(kinds: MappingKind[]): number[] {
  const size = BigInt(kinds.length) * SEG;
  let memShift = 0;
  while ((((BASE | size) >> BigInt(memShift)) & 1n) === 0n) memShift++;
  let pageshift = KPAGE_SHIFT;
  const perSeg = Number(SEG >> BigInt(KPAGE_SHIFT));
  for (let i = 0; i < kinds.length * perSeg; i++) {
    if (memShift > KPAGE_SHIFT && kinds[Math.floor(i / perSeg)] === 'hugetlb') pageshift = 24;
    memShift = Math.min(memShift, pageshift);
  }
  return kinds.map((k) => (memShift < 21 ? -22 : k === 'anon' ? -1 : 0));
}

const kind = fc.constantFrom<MappingKind>('anon', 'thp', 'hugetlb');
const later = fc.constantFrom<MappingKind | 'none'>('anon', 'thp', 'hugetlb', 'none');

test('a 2M map of registered memory answers from the pages pinned at registration, whatever is mapped there later', () => {
  fc.assert(
    fc.property(fc.array(kind, { minLength: 1, maxLength: 4 }), fc.array(later, { minLength: 4, maxLength: 4 }), (kinds, after) => {
      const { p, io } = v2Container();
      kinds.forEach((k, i) => {
        const start = BASE + BigInt(i) * SEG;
        p.mm.mapFixed({ start, end: start + SEG, kind: k, ...(k === 'hugetlb' ? { hugePageShift: 24 } : {}) });
      });
      assert.equal(io(V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(BASE, BigInt(kinds.length) * SEG)).ret, 0);
      const st = ddw2M(io);
      const answers = () => kinds.map((_, i) => io(V.VFIO_IOMMU_MAP_DMA, map(st + BigInt(i) * 2n * MiB, BASE + BigInt(i) * SEG, 2n * MiB)));
      const want = expected(kinds).map((e) => (e ? { ret: -1, errno: -e } : { ret: 0, errno: 0 }));
      assert.deepEqual(answers(), want);
      assert.equal(io(V.VFIO_IOMMU_UNMAP_DMA, unmap(st, 1n << 32n)).ret, 0);
      kinds.forEach((_, i) => {
        const start = BASE + BigInt(i) * SEG;
        const k = after[i]!;
        if (k === 'none') p.mm.unmapRange(start, start + SEG);
        else p.mm.mapFixed({ start, end: start + SEG, kind: k, ...(k === 'hugetlb' ? { hugePageShift: 24 } : {}) });
      });
      assert.deepEqual(answers(), want, 'the same answers after the mappings changed');
    }),
    { numRuns: 40 },
  );
});

test('a 2M map of pinned hugetlb pages points at the huge page: one contiguous block', () => {
  const { m, p, io } = v2Container();
  p.mm.mapFixed({ start: BASE, end: BASE + SEG, kind: 'hugetlb', hugePageShift: 24 });
  assert.equal(io(V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(BASE, SEG)).ret, 0);
  const r = p.mm.iommuGroupMemList[0]!;
  assert.equal(r.pageshift, 24);
  assert.equal(r.hpas[0]! % Number(SEG), 0, 'the huge page is aligned');
  assert.deepEqual(
    r.hpas.map((h, i) => h - r.hpas[0]! - i * m.mem.pageSize),
    r.hpas.map(() => 0),
    'its kernel pages follow each other',
  );
});

test('REGISTER_MEMORY that pins part of the range returns the pages it pinned, and charges nothing', () => {
  const { m, p, io } = v2Container();
  p.mm.mapFixed({ start: BASE, end: BASE + MiB, kind: 'anon' });
  const before = m.sys.vmlckKb(p.pid);
  assert.deepEqual(io(V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(BASE, 2n * MiB)), { ret: 16, errno: 0 });
  assert.equal(m.sys.vmlckKb(p.pid), before);
  assert.deepEqual([...p.mm.pins.values()], [], 'nothing stays pinned');
  assert.deepEqual(io(V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(BASE + MiB, MiB)), { ret: -1, errno: 14 }, 'none pinned: EFAULT');
});

test('hugetlb pages a fork left shared copy-on-write cannot be pinned; the child’s own can', () => {
  const { p, io } = v2Container((parent) => parent.mm.mapFixed({ start: BASE, end: BASE + SEG, kind: 'hugetlb', hugePageShift: 24 }));
  assert.deepEqual(io(V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(BASE, SEG)), { ret: -1, errno: 14 });
  p.mm.mapFixed({ start: BASE + SEG, end: BASE + 2n * SEG, kind: 'hugetlb', hugePageShift: 24 });
  assert.equal(io(V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(BASE + SEG, SEG)).ret, 0);
});

test('register-partial-pin-count and prereg-pageshift-sticky fixed: -EFAULT, and the small pages limit the region', () => {
  const { p, io } = v2Container(() => {}, { 'register-partial-pin-count': false, 'prereg-pageshift-sticky': false });
  p.mm.mapFixed({ start: BASE, end: BASE + SEG, kind: 'hugetlb', hugePageShift: 24 });
  p.mm.mapFixed({ start: BASE + SEG, end: BASE + 2n * SEG, kind: 'anon' });
  p.mm.mapFixed({ start: BASE + 4n * SEG, end: BASE + 4n * SEG + MiB, kind: 'anon' });
  assert.deepEqual(io(V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(BASE + 4n * SEG, 2n * MiB)), { ret: -1, errno: 14 });
  assert.equal(io(V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg(BASE, 2n * SEG)).ret, 0);
  const st = ddw2M(io);
  assert.deepEqual(io(V.VFIO_IOMMU_MAP_DMA, map(st, BASE, 2n * MiB)), { ret: -1, errno: 22 });
  assert.deepEqual(io(V.VFIO_IOMMU_MAP_DMA, map(st + 2n * MiB, BASE + SEG, 2n * MiB)), { ret: -1, errno: 22 });
});
