/**
 * The buddy allocator's free lists (FreeArea) and its choice of blocks: the block alloc_pages picks
 * is kernel-visible (real addresses in the logs and recordings), so PhysMemory must pick the same
 * blocks as the allocator it replaced, free lists as sets of page frames searched for the lowest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FreeArea } from '../../src/hw/free-area.js';
import { PhysMemory, type PageOwner } from '../../src/hw/memory.js';

const owner: PageOwner = { kind: 'kernel', label: 'test' };

/** The reference: free lists as Sets of page frames, the lowest found by a scan of the set. */
class SetBuddy {
  private readonly lists: Set<number>[] = [];
  private readonly live = new Map<number, number>();
  constructor(
    readonly totalPages: number,
    readonly maxOrder: number,
  ) {
    for (let o = 0; o <= maxOrder; o++) this.lists.push(new Set());
    let pfn = 0;
    while (pfn < totalPages) {
      let o = maxOrder;
      while (o > 0 && (pfn % 2 ** o !== 0 || pfn + 2 ** o > totalPages)) o--;
      this.lists[o]!.add(pfn);
      pfn += 2 ** o;
    }
  }

  alloc(order: number): number | null {
    if (order < 0 || order > this.maxOrder) return null;
    let o = order;
    while (o <= this.maxOrder && this.lists[o]!.size === 0) o++;
    if (o > this.maxOrder) return null;
    const pfn = Math.min(...this.lists[o]!);
    this.lists[o]!.delete(pfn);
    while (o > order) {
      o--;
      this.lists[o]!.add(pfn + 2 ** o);
    }
    this.live.set(pfn, order);
    return pfn;
  }

  free(pfn: number, order: number): void {
    this.live.delete(pfn);
    let p = pfn;
    let o = order;
    while (o < this.maxOrder) {
      const size = 2 ** o;
      const buddy = Math.floor(p / size) % 2 ? p - size : p + size;
      if (!this.lists[o]!.has(buddy)) break;
      this.lists[o]!.delete(buddy);
      p = Math.min(p, buddy);
      o++;
    }
    this.lists[o]!.add(p);
  }
}

test('FreeArea: membership and the lowest index are those of a set, over random adds and deletes', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(1, 31, 32, 33, 8191, 8192, 8193, 40000, 2 ** 32),
      fc.array(fc.tuple(fc.boolean(), fc.nat()), { maxLength: 200 }),
      (blocks, ops) => {
        const area = new FreeArea(blocks);
        const set = new Set<number>();
        for (const [add, r] of ops) {
          // Indices near both ends of the range and spread in between.
          const index = [r % blocks, blocks - 1 - (r % Math.min(blocks, 64)), Math.floor((r * 2654435761) % blocks)][r % 3]!;
          if (add && !set.has(index)) {
            area.add(index);
            set.add(index);
          } else if (!add && set.size > 0) {
            const low = area.lowest();
            assert.equal(low, Math.min(...set));
            area.delete(low);
            set.delete(low);
          }
          assert.equal(area.nrFree, set.size);
          assert.equal(area.has(index), set.has(index), `index ${index}`);
        }
        for (const i of set) assert.ok(area.has(i), `index ${i} on the list`);
      },
    ),
    { numRuns: 300 },
  );
});

test('FreeArea refuses more than 2^32 blocks, naming the limit', () => {
  assert.throws(() => new FreeArea(2 ** 32 + 1), /4294967297 blocks is over the limit of 2\^32/);
});

test('alloc_pages picks the same blocks as free lists searched for their lowest page frame', () => {
  // RAM sizes that are not whole numbers of the largest block leave smaller blocks at the top.
  const ram = fc.record({ pages: fc.integer({ min: 1, max: 3000 }), maxOrder: fc.integer({ min: 0, max: 10 }) });
  const op = fc.oneof(
    fc.record({ alloc: fc.constant(true), order: fc.integer({ min: -1, max: 11 }) }),
    fc.record({ alloc: fc.constant(false), pick: fc.nat() }),
  );
  fc.assert(
    fc.property(ram, fc.array(op, { maxLength: 300 }), ({ pages, maxOrder }, ops) => {
      const mem = new PhysMemory({ ramBytes: pages * 4096, pageShift: 12, maxPageOrder: maxOrder });
      const ref = new SetBuddy(pages, maxOrder);
      const live: { pfn: number; order: number }[] = [];
      for (const o of ops) {
        if (o.alloc) {
          const got = mem.allocPages(o.order, owner);
          assert.equal(got, ref.alloc(o.order), `alloc_pages(${o.order})`);
          if (got !== null) live.push({ pfn: got, order: o.order });
        } else if (live.length > 0) {
          const [b] = live.splice(o.pick % live.length, 1);
          mem.freePages(b!.pfn, b!.order);
          ref.free(b!.pfn, b!.order);
        }
        assert.equal(mem.freeBytes, (pages - live.reduce((s, b) => s + 2 ** b.order, 0)) * 4096);
      }
      // Drain: the remaining free blocks come out in the same order, largest orders last.
      for (let order = 0; order <= maxOrder; order++) {
        for (;;) {
          const got = mem.allocPages(order, owner);
          assert.equal(got, ref.alloc(order), `draining alloc_pages(${order})`);
          if (got === null) break;
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('alloc_pages at 2^32 pages: block indices past 2^31 split and merge as below them', () => {
  // 2^32 4K pages (16 TiB), MAX_PAGE_ORDER 30: four blocks of 2^30 pages.
  const mem = new PhysMemory({ ramBytes: 2 ** 44, pageShift: 12, maxPageOrder: 30 });
  const ref = new SetBuddy(2 ** 32, 30);
  const both = (order: number) => {
    const got = mem.allocPages(order, owner);
    assert.equal(got, ref.alloc(order), `alloc_pages(${order})`);
    return got!;
  };
  assert.equal(both(30), 0);
  assert.equal(both(30), 2 ** 30);
  const a = both(0);
  const b = both(1);
  const c = both(0);
  assert.deepEqual([a, b, c], [2 ** 31, 2 ** 31 + 2, 2 ** 31 + 1]);
  const last = both(30);
  assert.equal(last, 3 * 2 ** 30);
  mem.writeU64BE((2 ** 32 - 1) * 4096, 7);
  for (const [pfn, order] of [
    [a, 0],
    [b, 1],
    [c, 0],
    [last, 30],
  ] as const) {
    mem.freePages(pfn, order);
    ref.free(pfn, order);
  }
  // All four merged back: the top two blocks of 2^30 come out in address order, the top page zeroed.
  assert.equal(both(30), 2 ** 31);
  assert.equal(both(30), 3 * 2 ** 30);
  assert.equal(mem.readU64BE((2 ** 32 - 1) * 4096), 0);
  assert.equal(both(0), null);
});
