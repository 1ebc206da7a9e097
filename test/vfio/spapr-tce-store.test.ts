/**
 * VFIO v2 MAP_DMA / UNMAP_DMA against the kernel's definitions of what they leave behind, over
 * random maps and unmaps: fresh runs (whose mapped counts and userspace-view slots are stored a
 * region span and a memory page at a time), maps over valid entries (entry by entry, each old
 * entry released), maps that stop at a page outside the registered regions (the entries done are
 * cleared again), runs across leaf levels and view pages. After each call every entry of the
 * window holds the real address of its user page (with permission bits) or nothing, its view slot
 * the user address or 0, and each region counts 1 + the valid entries pointing into it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TCE_PERM_MASK, tceAddr } from '../../src/hw/tce.js';
import * as V from '../../src/kernel/include/uapi/linux/vfio.js';
import type { IommuTable } from '../../src/kernel/iommu-table.js';
import type { MmIommuRegion } from '../../src/kernel/mm-iommu.js';
import { Machine } from '../../src/machine/machine.js';
import { openV2Container } from './v2-container.js';

const BUF = 0x10000000n;
const M = 2n ** 20n;
/** Registered regions [start, end) in MiB from BUF: two adjacent, a gap, a third. */
const REGIONS: [number, number][] = [
  [0, 8],
  [8, 12],
  [16, 24],
];
/** User pages (of the IOMMU page size) a map may start at: the regions and the gap, in MiB. */
const SPAN_MIB = 24;

type Op = { kind: 'map'; iova: number; ua: number; pages: number } | { kind: 'unmap'; iova: number; pages: number };

interface Shape {
  pageShift: number;
  levels: number;
  ops: Op[];
}

const shape: fc.Arbitrary<Shape> = fc.record({ pageShift: fc.constantFrom(12, 16), levels: fc.constantFrom(1, 2) }).chain(({ pageShift, levels }) => {
  const windowPages = 2 ** (28 - pageShift); // a 256 MiB window
  const userPages = (SPAN_MIB << 20) >> pageShift;
  // IOVAs near the first leaf boundary (8192 entries a leaf for 2 levels) and anywhere.
  const anywhere = fc.nat(windowPages - 1);
  const iova = windowPages > 8192 + 600 ? fc.oneof(fc.integer({ min: 8192 - 600, max: 8192 + 600 }), anywhere) : anywhere;
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('map' as const), iova, ua: fc.nat(userPages - 1), pages: fc.integer({ min: 1, max: 1500 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('unmap' as const), iova, pages: fc.integer({ min: 1, max: 3000 }) }) },
  );
  return fc.record({ pageShift: fc.constant(pageShift), levels: fc.constant(levels), ops: fc.array(op, { minLength: 1, maxLength: 12 }) });
});

function setup(s: Shape) {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k', ramBytes: 2 * 2 ** 30 });
  m.bindVfioPci('0000:01:00.0');
  const p = m.sys.spawn('t');
  p.mm.mappings.push({ start: BUF, end: BUF + BigInt(SPAN_MIB) * M, kind: 'anon' });
  const c = openV2Container(m, p.pid);
  const io = (req: number, arg: bigint | Uint8Array) => m.sys.ioctl(p.pid, c, req, arg);
  for (const [a, b] of REGIONS) {
    const reg = V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr: BUF + BigInt(a) * M, size: BigInt(b - a) * M });
    assert.equal(io(V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg).ret, 0);
  }
  const create = V.encode('vfio_iommu_spapr_tce_create', { argsz: 40, page_shift: s.pageShift, window_size: 2n ** 28n, levels: s.levels });
  assert.equal(io(V.VFIO_IOMMU_SPAPR_TCE_CREATE, create).ret, 0);
  const start = V.decode('vfio_iommu_spapr_tce_create', create).start_addr as bigint;
  const tbl = m.peOf(m.devices[0]!)!.tables.find((t) => t !== null && t.start === start)!;
  // Regions by registration order (the list is newest first).
  const regions = [...p.mm.iommuGroupMemList].sort((x, y) => (x.ua < y.ua ? -1 : 1));
  return { m, io, start, tbl, regions };
}

/** The region holding user address `ua` (a bigint), or undefined. */
function regionOf(regions: MmIommuRegion[], ua: bigint, kernelShift: number): MmIommuRegion | undefined {
  return regions.find((r) => ua >= r.ua && ua < r.ua + (BigInt(r.entries) << BigInt(kernelShift)));
}

function hpaOf(r: MmIommuRegion, ua: bigint, kernelShift: number): number {
  const off = Number(ua - r.ua);
  const kpage = 2 ** kernelShift;
  return r.hpas[Math.floor(off / kpage)]! + (off % kpage);
}

test('v2 MAP_DMA/UNMAP_DMA leave the TCEs, the userspace view and the mapped counts the kernel defines', () => {
  fc.assert(
    fc.property(shape, (s) => {
      const { m, io, start, tbl, regions } = setup(s);
      const ps = 2 ** s.pageShift;
      const kshift = m.mem.pageShift;
      const windowPages = tbl.itSize;
      // The model of the window: entry → user address, and what each call returns.
      const want = new Map<number, bigint>();
      for (const o of s.ops) {
        const pages = Math.min(o.pages, windowPages - o.iova);
        const iova = start + BigInt(o.iova) * BigInt(ps);
        if (o.kind === 'unmap') {
          const r = io(V.VFIO_IOMMU_UNMAP_DMA, V.encode('vfio_iommu_type1_dma_unmap', { argsz: 24, iova, size: BigInt(pages * ps) }));
          assert.equal(r.ret, 0);
          for (let k = 0; k < pages; k++) want.delete(o.iova + k);
          continue;
        }
        const ua = BUF + BigInt(o.ua) * BigInt(ps);
        const r = io(V.VFIO_IOMMU_MAP_DMA, V.encode('vfio_iommu_type1_dma_map', { argsz: 32, flags: 3, vaddr: ua, iova, size: BigInt(pages * ps) }));
        // The first page outside the regions (or past the process's mapping) stops the map.
        let ok = 0;
        while (ok < pages && regionOf(regions, ua + BigInt(ok * ps), kshift)) ok++;
        if (ok === pages) {
          assert.equal(r.ret, 0);
          for (let k = 0; k < pages; k++) want.set(o.iova + k, ua + BigInt(k * ps));
        } else {
          assert.deepEqual(r, { ret: -1, errno: 22 });
          for (let k = 0; k < ok; k++) want.delete(o.iova + k);
        }
        check(m, tbl, regions, want, kshift);
      }
      check(m, tbl, regions, want, kshift);
    }),
    { numRuns: 30 },
  );
});

function check(m: Machine, tbl: IommuTable, regions: MmIommuRegion[], want: Map<number, bigint>, kshift: number): void {
  const counts = regions.map(() => 1);
  for (let idx = 0; idx < tbl.itSize; idx++) {
    const e = tbl.itOffset + idx;
    const tce = tbl.ops.get(tbl, e);
    const slot = tbl.ops.useraddrptr!(tbl, e, false);
    const view = slot === null ? 0 : m.mem.readU64BE(slot);
    const ua = want.get(idx);
    if (ua === undefined) {
      assert.equal(tce & TCE_PERM_MASK, 0, `entry ${idx} is empty`);
      assert.equal(view, 0, `view slot ${idx} is 0`);
      continue;
    }
    const r = regionOf(regions, ua, kshift)!;
    counts[regions.indexOf(r)]!++;
    assert.equal(tce & TCE_PERM_MASK, 3, `entry ${idx} is read/write`);
    assert.equal(tceAddr(tce), hpaOf(r, ua, kshift), `entry ${idx} holds its page's real address`);
    assert.equal(view, Number(ua), `view slot ${idx} holds the user address`);
  }
  assert.deepEqual(
    regions.map((r) => r.mapped),
    counts,
    'each region counts 1 + its valid entries',
  );
}
