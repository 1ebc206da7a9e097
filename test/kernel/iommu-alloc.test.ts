/** The pooled TCE allocator of arch/powerpc/kernel/iommu.c and lib/iommu-helper.c. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DMA_FROM_DEVICE } from '../../src/hw/tce.js';
import { hash32, iommuAlloc, iommuFree, iommuPoolHash, iommuRangeAlloc, iommuTableInUse } from '../../src/kernel/iommu.js';
import type { IommuTable } from '../../src/kernel/iommu-table.js';
import { bit, fakeTable, occupy, setBits } from './fake-table.js';

const NO_MASK = Number.MAX_SAFE_INTEGER;
/** dma_get_seg_boundary_nr_pages() for the PCI default 0xffffffff at 4 KiB pages. */
const BOUNDARY_4G_4K = 2 ** 20;
/** A CPU whose pool hash selects each pool of a 4-pool table. */
const CPU_FOR_POOL = [0, 1, 4, 2];

function rangeAlloc(tbl: IommuTable, npages: number, cpu = 0, opts: { mask?: number; align?: number } = {}): number {
  return iommuRangeAlloc(tbl, npages, null, opts.mask ?? NO_MASK, opts.align ?? 0, cpu, BOUNDARY_4G_4K);
}

/** Allocate `npages` at a time until the allocator gives up; returns every index handed out. */
function drain(tbl: IommuTable, npages: number, cpu = 0): number[] {
  const got: number[] = [];
  for (let n = rangeAlloc(tbl, npages, cpu); n !== -1; n = rangeAlloc(tbl, npages, cpu)) got.push(n);
  return got;
}

test('hash_32(cpu, 2) is the top two bits of cpu * GOLDEN_RATIO_32', () => {
  for (let cpu = 0; cpu < 64; cpu++) {
    const expected = Number(((BigInt(cpu) * 0x61c88647n) & 0xffffffffn) >> 30n);
    assert.equal(iommuPoolHash(cpu), expected, `cpu ${cpu}`);
    assert.equal(hash32(cpu, 2), expected);
  }
  assert.deepEqual(CPU_FOR_POOL.map(iommuPoolHash), [0, 1, 2, 3]);
});

test('iommu_init_table: pool layout by window size', async (t) => {
  const cases = [
    // name, it_size, page shift → nr_pools, poolsize
    { name: '256 MiB of 4K', itSize: 65536, shift: 12, nrPools: 1, poolsize: 49152 },
    { name: '1 GiB - 4K', itSize: 262143, shift: 12, nrPools: 1, poolsize: 196607 },
    { name: 'exactly 1 GiB of 4K', itSize: 262144, shift: 12, nrPools: 4, poolsize: 49152 },
    { name: '2 GiB of 4K', itSize: 524288, shift: 12, nrPools: 4, poolsize: 98304 },
    { name: '1 GiB of 64K', itSize: 16384, shift: 16, nrPools: 4, poolsize: 3072 },
    { name: 'odd size 1001 of 4K', itSize: 1001, shift: 12, nrPools: 1, poolsize: 750 },
    { name: 'odd size 1 GiB + 3 pages of 16M', itSize: 67, shift: 24, nrPools: 4, poolsize: 12 },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const { tbl, calls } = fakeTable({ itSize: c.itSize, pageShift: c.shift }, true);
      assert.equal(tbl.nrPools, c.nrPools);
      assert.equal(tbl.poolsize, c.poolsize);
      assert.deepEqual(
        tbl.pools,
        Array.from({ length: c.nrPools }, (_, i) => ({
          start: i * c.poolsize,
          end: (i + 1) * c.poolsize,
          hint: i * c.poolsize,
        })),
      );
      const largeStart = c.nrPools * c.poolsize;
      assert.deepEqual(tbl.largePool, { start: largeStart, end: c.itSize, hint: largeStart });
      assert.equal(tbl.itMap!.length, Math.ceil(c.itSize / 64) * 8, 'BITS_TO_LONGS bytes');
      // iommu_table_clear on a normal boot: the whole window.
      assert.deepEqual(calls, [{ op: 'clear', index: 0, npages: c.itSize }]);
    });
  }
});

test('iommu_table_reserve_pages: entry 0 and the clamped reserved range', () => {
  const atZero = fakeTable({ itSize: 1024, resStart: 100, resEnd: 110 }).tbl;
  assert.deepEqual(setBits(atZero), [0, ...Array.from({ length: 10 }, (_, i) => 100 + i)]);
  assert.equal([atZero.itReservedStart, atZero.itReservedEnd].join(), '100,110');

  const above = fakeTable({ itSize: 1024, itOffset: 4096, resStart: 4000, resEnd: 4100 }).tbl;
  assert.deepEqual(setBits(above), [0, 1, 2, 3], 'clamped to [it_offset, ...): bit 0 here is entry 4096');
  assert.equal([above.itReservedStart, above.itReservedEnd].join(), '4096,4100');

  const clampedEnd = fakeTable({ itSize: 64, itOffset: 10, resStart: 70, resEnd: 1000 }).tbl;
  assert.deepEqual(setBits(clampedEnd), [60, 61, 62, 63]);

  const none = fakeTable({ itSize: 64, itOffset: 10, resStart: 5, resEnd: 9 }).tbl;
  assert.deepEqual(setBits(none), [], 'no entry 0 reservation when it_offset != 0');
  assert.equal([none.itReservedStart, none.itReservedEnd].join(), '10,10');
});

test('iommu_table_in_use ignores entry 0 and the reserved range', () => {
  const { tbl } = fakeTable({ itSize: 1024, resStart: 100, resEnd: 110 });
  assert.equal(iommuTableInUse(tbl), false);
  const n = rangeAlloc(tbl, 4);
  assert.equal(iommuTableInUse(tbl), true);
  assert.ok(iommuFree(tbl, BigInt(n) << 12n, 4));
  assert.equal(iommuTableInUse(tbl), false);

  const off = fakeTable({ itSize: 64, itOffset: 8 }).tbl;
  assert.equal(iommuTableInUse(off), false);
  occupy(off, 0, 1);
  assert.equal(iommuTableInUse(off), true, 'bit 0 counts when it_offset != 0');
});

test('entry 0 is never handed out when the window starts at bus address 0', () => {
  const { tbl } = fakeTable({ itSize: 64 });
  const got = drain(tbl, 1);
  assert.ok(!got.includes(0));
});

test('the last index below each pool limit is never used', () => {
  // 1 pool [0, 48), large pool [48, 64): entries 47 and 63 stay free.
  const { tbl } = fakeTable({ itSize: 64 });
  const got = drain(tbl, 1).sort((a, b) => a - b);
  const expected = Array.from({ length: 64 }, (_, i) => i).filter((i) => i !== 0 && i !== 47 && i !== 63);
  assert.deepEqual(got, expected);
  assert.equal(bit(tbl, 47), false);
  assert.equal(bit(tbl, 63), false);
});

test('the reserved range is never handed out', () => {
  const { tbl } = fakeTable({ itSize: 256, itOffset: 1000, resStart: 1050, resEnd: 1070 });
  for (const n of drain(tbl, 1)) assert.ok(n + 1000 < 1050 || n + 1000 >= 1070, `entry ${n + 1000}`);
  const { tbl: t2 } = fakeTable({ itSize: 256, itOffset: 1000, resStart: 1050, resEnd: 1070 });
  for (const n of drain(t2, 3)) assert.ok(n + 3 + 1000 <= 1050 || n + 1000 >= 1070);
});

test('small allocations bump the hint to the next 16-entry block; large ones to their end', () => {
  const { tbl } = fakeTable({ itSize: 524288 });
  assert.equal(rangeAlloc(tbl, 1), 1, 'entry 0 is reserved');
  assert.equal(tbl.pools[0]!.hint, 16);
  assert.equal(rangeAlloc(tbl, 1), 16);
  assert.equal(rangeAlloc(tbl, 3), 32);
  assert.equal(tbl.pools[0]!.hint, 48);
  assert.equal(rangeAlloc(tbl, 15), 48, '15 pages is still small');
  assert.equal(tbl.pools[0]!.hint, 64);

  const large = tbl.largePool.start;
  assert.equal(rangeAlloc(tbl, 16), large, '16 pages go to the large pool');
  assert.equal(tbl.largePool.hint, large + 16);
  assert.equal(rangeAlloc(tbl, 17), large + 16);
  assert.equal(tbl.largePool.hint, large + 33, 'no block rounding in the large pool');
});

test('each CPU allocates from its hashed pool', () => {
  const { tbl } = fakeTable({ itSize: 524288 });
  for (let p = 0; p < 4; p++) {
    const start = tbl.pools[p]!.start;
    assert.equal(rangeAlloc(tbl, 2, CPU_FOR_POOL[p]), p === 0 ? 1 : start);
  }
});

test('failure passes: this pool from its start, then the other pools, then the large pool', () => {
  const { tbl } = fakeTable({ itSize: 524288 });
  const [p0, p1, p2, p3] = tbl.pools as [typeof tbl.largePool, typeof tbl.largePool, typeof tbl.largePool, typeof tbl.largePool];

  // Pass 1: nothing free after the hint, a hole before it.
  occupy(tbl, p0.start, p0.end);
  tbl.itMap![0] &= ~(1 << 5);
  p0.hint = 4096;
  assert.equal(rangeAlloc(tbl, 1, 0), 5);
  assert.equal(p0.hint, 16, 'the hint follows the allocation');

  // Pool 0 full: pool 1, then 2, then 3 from their starts.
  p1.hint = p1.start + 100;
  assert.equal(rangeAlloc(tbl, 1, 0), p1.start, 'pool 1 searched from its start');
  occupy(tbl, p1.start, p1.end);
  assert.equal(rangeAlloc(tbl, 1, 0), p2.start);
  occupy(tbl, p2.start, p2.end);
  assert.equal(rangeAlloc(tbl, 1, 0), p3.start);
  occupy(tbl, p3.start, p3.end);
  // Last resort: the large pool.
  assert.equal(rangeAlloc(tbl, 1, 0), tbl.largePool.start);
  occupy(tbl, tbl.largePool.start, tbl.largePool.end);
  assert.equal(rangeAlloc(tbl, 1, 0), -1);

  // A CPU on pool 2 wraps round to pool 0 after pool 3.
  const t2 = fakeTable({ itSize: 524288 }).tbl;
  occupy(t2, t2.pools[2]!.start, t2.pools[3]!.end);
  assert.equal(rangeAlloc(t2, 1, CPU_FOR_POOL[2]), 1);
});

test('a large allocation falls back to the small pools when the large pool is full', () => {
  const { tbl } = fakeTable({ itSize: 524288 });
  occupy(tbl, tbl.largePool.start, tbl.largePool.end);
  assert.equal(rangeAlloc(tbl, 64, 0), tbl.pools[1]!.start, 'pass 1 retries the large pool, pass 2 is pools[hash + 1]');
});

test('alignment is relative to bitmap index 0 (it_offset), not to the bus address', () => {
  const { tbl } = fakeTable({ itSize: 4096, itOffset: 3 });
  tbl.pools[0]!.hint = 5;
  const n = rangeAlloc(tbl, 4, 0, { align: 4 });
  assert.equal(n, 16);
  assert.notEqual((n + 3) % 16, 0);
  for (let i = 0; i < 50; i++) {
    const m = rangeAlloc(tbl, 1 + (i % 7), 0, { align: 2 });
    if (m !== -1) assert.equal(m % 4, 0);
  }
});

test('an allocation never crosses a 4 GiB boundary of the bus address space', () => {
  // The window straddles bus address 4 GiB at bitmap index 3122 (inside the large pool).
  const itOffset = BOUNDARY_4G_4K - 3122;
  const { tbl } = fakeTable({ itSize: 4096, itOffset });
  assert.equal(rangeAlloc(tbl, 100), 3122, 'restarted at ALIGN(shift + idx, boundary) - shift');
  const t2 = fakeTable({ itSize: 4096, itOffset }).tbl;
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 200 }), (sizes) => {
      for (const npages of sizes) {
        const n = rangeAlloc(t2, npages, npages);
        if (n === -1) continue;
        const first = Math.floor((itOffset + n) / BOUNDARY_4G_4K);
        const last = Math.floor((itOffset + n + npages - 1) / BOUNDARY_4G_4K);
        assert.equal(first, last, `[${n}, +${npages}) crosses`);
      }
    }),
  );
});

test('a 32-bit mask never gets an entry at or above 4 GiB', () => {
  // 8 GiB of 64K pages; mask >> 16 = 0xffff; pool 2 straddles 4 GiB, pool 3 and the large pool are above.
  const mask = 0xffff;
  const { tbl } = fakeTable({ itSize: 131072, pageShift: 16 });
  let got = 0;
  for (let i = 0; ; i++) {
    const npages = 1 + ((i * 7) % 40);
    const n = rangeAlloc(tbl, npages, i % 8, { mask });
    if (n === -1) break;
    got += npages;
    assert.ok(n + npages <= mask, `[${n}, +${npages}) reaches ${n + npages}`);
  }
  assert.ok(got > 60000, 'the space below 4 GiB gets used');
  assert.equal(bit(tbl, mask), false, 'the last entry below the mask limit is never used');
  assert.notEqual(rangeAlloc(tbl, 1, 0), -1, 'without the mask there is space above 4 GiB');
});

test('npages 0 is DMA_MAPPING_ERROR', () => {
  const { tbl } = fakeTable({ itSize: 64 });
  assert.equal(rangeAlloc(tbl, 0), -1);
});

test('scatter-gather handle: the search continues at the previous end', () => {
  const { tbl } = fakeTable({ itSize: 4096 });
  const handle = { value: 0 };
  assert.equal(iommuRangeAlloc(tbl, 3, handle, NO_MASK, 0, 0, BOUNDARY_4G_4K), 1);
  assert.equal(handle.value, 4);
  assert.equal(iommuRangeAlloc(tbl, 2, handle, NO_MASK, 0, 0, BOUNDARY_4G_4K), 4, 'not the hint (16)');
  assert.equal(handle.value, 6);

  // Only pass 0 starts at the handle: pass 1 searches the pool from its start.
  const t2 = fakeTable({ itSize: 524288 }).tbl;
  occupy(t2, 1000, t2.pools[0]!.end);
  const h2 = { value: 2000 };
  assert.equal(iommuRangeAlloc(t2, 2, h2, NO_MASK, 0, 0, BOUNDARY_4G_4K), 1);
  assert.equal(h2.value, 3);
});

test('__iommu_free: ops.clear and bitmap; a range outside the window is a no-op', () => {
  const { tbl, calls } = fakeTable({ itSize: 1024, itOffset: 0x100 });
  const n = rangeAlloc(tbl, 5);
  const dma = BigInt(n + 0x100) << 12n;
  assert.equal(iommuFree(tbl, dma - 4096n * BigInt(n + 1), 1), false, 'below it_offset');
  assert.equal(iommuFree(tbl, BigInt(0x100 + 1020) << 12n, 5), false, 'past it_size');
  assert.deepEqual(calls, []);
  assert.equal(iommuFree(tbl, dma + 0x123n, 5), true, 'offset bits are ignored');
  assert.deepEqual(calls, [{ op: 'clear', index: n + 0x100, npages: 5 }]);
  assert.equal(iommuTableInUse(tbl), false);
});

test('iommu_alloc: ops.set with the page-masked address; a failing set frees the range', () => {
  const { tbl, calls, setResults } = fakeTable({ itSize: 1024, itOffset: 0x800 });
  const dma = iommuAlloc(tbl, 0x12345678, 2, DMA_FROM_DEVICE, NO_MASK, 0, 0, BOUNDARY_4G_4K);
  assert.equal(dma, BigInt(0x800) << 12n);
  assert.deepEqual(calls, [{ op: 'set', index: 0x800, npages: 2, pa: 0x12345000, dir: DMA_FROM_DEVICE }]);

  calls.length = 0;
  setResults.push(-1);
  assert.equal(iommuAlloc(tbl, 0x4000, 3, DMA_FROM_DEVICE, NO_MASK, 0, 0, BOUNDARY_4G_4K), null);
  assert.deepEqual(calls, [
    { op: 'set', index: 0x810, npages: 3, pa: 0x4000, dir: DMA_FROM_DEVICE },
    { op: 'clear', index: 0x810, npages: 3 },
  ]);
  assert.deepEqual(setBits(tbl), [0, 1]);
});
