/**
 * The allocator against a reference model: the same pool, hint and pass rules written out step
 * by step over a boolean array, with a linear-scan search instead of the bitmap search.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { iommuAreaAlloc, iommuFree, iommuRangeAlloc } from '../../src/kernel/iommu.js';
import { bit, fakeTable } from './fake-table.js';

const NO_MASK = Number.MAX_SAFE_INTEGER;

/** Linear-scan reference for iommu_area_alloc: the first aligned index whose run fits. */
function refAreaAlloc(used: boolean[], size: number, start: number, nr: number, shift: number, boundary: number, align: number): number {
  for (let idx = start; idx + nr <= size - 1; idx++) {
    if (idx % align !== 0 || ((shift + idx) % boundary) + nr > boundary) continue;
    let free = true;
    for (let i = idx; i < idx + nr && free; i++) free = !used[i];
    if (!free) continue;
    for (let i = idx; i < idx + nr; i++) used[i] = true;
    return idx;
  }
  return -1;
}

test('iommu_area_alloc agrees with a linear scan on random bitmaps', () => {
  fc.assert(
    fc.property(
      fc.array(fc.boolean(), { minLength: 1, maxLength: 300 }),
      fc.record({
        start: fc.nat(320),
        nr: fc.integer({ min: 1, max: 40 }),
        shift: fc.nat(1000),
        boundary: fc.constantFrom(4, 16, 64, 1024),
        alignOrder: fc.nat(4),
        sizeCut: fc.nat(20),
      }),
      (bits, a) => {
        const map = new Uint8Array(Math.ceil(bits.length / 64) * 8);
        bits.forEach((b, i) => {
          if (b) map[i >>> 3] |= 1 << (i & 7);
        });
        const size = Math.max(1, bits.length - a.sizeCut);
        const used = [...bits];
        const align = 2 ** a.alignOrder;
        const expected = refAreaAlloc(used, size, a.start, a.nr, a.shift, a.boundary, align);
        assert.equal(iommuAreaAlloc(map, size, a.start, a.nr, a.shift, a.boundary, align - 1), expected);
        for (let i = 0; i < bits.length; i++) assert.equal(((map[i >>> 3]! >> (i & 7)) & 1) === 1, used[i]);
      },
    ),
  );
});

interface RefPool {
  start: number;
  end: number;
  hint: number;
}

/**
 * Reference model of iommu_init_table + iommu_range_alloc + __iommu_free: the same pool, hint
 * and pass rules written out step by step, over a boolean array with refAreaAlloc.
 */
class RefAllocator {
  readonly used: boolean[];
  readonly pools: RefPool[] = [];
  readonly large: RefPool;
  readonly handle = { value: 0 };

  constructor(
    readonly size: number,
    readonly offset: number,
    pageShift: number,
    resStart: number,
    resEnd: number,
  ) {
    this.used = new Array<boolean>(size).fill(false);
    if (offset === 0) this.used[0] = true;
    for (let e = Math.max(resStart, offset); e < Math.min(resEnd, offset + size); e++) this.used[e - offset] = true;
    const nrPools = size * 2 ** pageShift >= 2 ** 30 ? 4 : 1;
    const poolsize = Math.floor(Math.floor((size * 3) / 4) / nrPools);
    for (let i = 0; i < nrPools; i++) this.pools.push({ start: i * poolsize, end: (i + 1) * poolsize, hint: i * poolsize });
    this.large = { start: nrPools * poolsize, end: size, hint: nrPools * poolsize };
  }

  alloc(npages: number, useHandle: boolean, mask: number, alignOrder: number, cpu: number, boundary: number): number {
    const nr = this.pools.length;
    const isLarge = npages > 15;
    let poolNr = Number(((BigInt(cpu) * 0x61c88647n) & 0xffffffffn) >> 30n) % nr;
    let pool = isLarge ? this.large : this.pools[poolNr]!;
    for (let pass = 0; pass <= nr + 2; pass++) {
      // Which pool this pass searches, and from where.
      if (pass >= 2 && pass <= nr + 1) {
        poolNr = (poolNr + 1) % nr;
        pool = this.pools[poolNr]!;
      } else if (pass === nr + 2) {
        pool = this.large;
      }
      if (pass >= 1) pool.hint = pool.start;
      const h = this.handle.value;
      let start = pass === 0 && useHandle && h !== 0 && h >= pool.start && h < pool.end ? h : pool.hint;
      let limit = pool.end;
      if (start >= limit) start = pool.start;
      if (limit + this.offset > mask) {
        limit = mask - this.offset + 1;
        const masked = Number(BigInt(start) & BigInt(mask));
        if (masked >= limit || pass > 0) {
          pool = this.pools[0]!;
          start = pool.start;
        } else {
          start = masked;
        }
      }
      const n = refAreaAlloc(this.used, limit, start, npages, this.offset, boundary, 2 ** alignOrder);
      if (n === -1) continue;
      pool.hint = isLarge ? n + npages : Math.ceil((n + npages) / 16) * 16;
      if (useHandle) this.handle.value = n + npages;
      return n;
    }
    return -1;
  }

  free(n: number, npages: number): void {
    for (let i = n; i < n + npages; i++) this.used[i] = false;
  }
}

type Op = { kind: 'alloc'; npages: number; cpu: number; alignOrder: number; maskOver: number | null; useHandle: boolean } | { kind: 'free'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      npages: fc.oneof(fc.integer({ min: 1, max: 15 }), fc.integer({ min: 16, max: 48 })),
      cpu: fc.nat(15),
      alignOrder: fc.nat(3),
      maskOver: fc.option(fc.nat(1200), { freq: 3 }),
      useHandle: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
);

test('random alloc/free sequences agree with the reference allocator', () => {
  fc.assert(
    fc.property(
      fc.record({
        pageShift: fc.constantFrom(12, 16, 24),
        itSize: fc.integer({ min: 16, max: 1024 }),
        itOffset: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5000 })),
        resStart: fc.nat(6000),
        resLen: fc.nat(300),
        boundary: fc.constantFrom(16, 64, 256, 2 ** 20),
      }),
      fc.array(opArb, { minLength: 20, maxLength: 120 }),
      (g, ops) => {
        const spec = { itSize: g.itSize, itOffset: g.itOffset, pageShift: g.pageShift };
        const { tbl } = fakeTable({ ...spec, resStart: g.resStart, resEnd: g.resStart + g.resLen });
        const ref = new RefAllocator(g.itSize, g.itOffset, g.pageShift, g.resStart, g.resStart + g.resLen);
        const handle = { value: 0 };
        const live: { n: number; npages: number }[] = [];
        for (const op of ops) {
          if (op.kind === 'free') {
            if (live.length === 0) continue;
            const [a] = live.splice(op.pick % live.length, 1) as [{ n: number; npages: number }];
            assert.ok(iommuFree(tbl, BigInt(a.n + g.itOffset) << BigInt(g.pageShift), a.npages));
            ref.free(a.n, a.npages);
          } else {
            const mask = op.maskOver === null ? NO_MASK : g.itOffset + op.maskOver;
            const h = op.useHandle ? handle : null;
            const n = iommuRangeAlloc(tbl, op.npages, h, mask, op.alignOrder, op.cpu, g.boundary);
            const expected = ref.alloc(op.npages, op.useHandle, mask, op.alignOrder, op.cpu, g.boundary);
            assert.equal(n, expected, JSON.stringify(op));
            if (n !== -1) {
              live.push({ n, npages: op.npages });
              assert.ok(n + op.npages <= g.itSize);
              assert.ok(n + g.itOffset + op.npages <= mask, 'under the mask, last entry unused');
            }
            assert.equal(handle.value, ref.handle.value);
          }
          assert.deepEqual(
            tbl.pools.map((p) => p.hint),
            ref.pools.map((p) => p.hint),
          );
          assert.equal(tbl.largePool.hint, ref.large.hint);
          assert.equal(
            ref.used.findIndex((u, i) => u !== bit(tbl, i)),
            -1,
            'bitmaps differ',
          );
        }
      },
    ),
    { numRuns: 300 },
  );
});
