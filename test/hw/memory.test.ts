/** PhysMemory: the buddy page allocator (alloc_pages/free_pages) and big-endian TCE storage. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PhysMemory, type PageOwner } from '../../src/hw/memory.js';

const owner: PageOwner = { kind: 'kernel', label: 'test' };
/** 256 pages of 4K, MAX_PAGE_ORDER 4: sixteen order-4 blocks. */
const smallRam = () => new PhysMemory({ ramBytes: 2 ** 20, pageShift: 12, maxPageOrder: 4 });

test('alloc_pages returns naturally aligned blocks that blockOf() attributes to their owner', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 40 }), (orders) => {
      const mem = smallRam();
      const got: { pfn: number; order: number }[] = [];
      for (const order of orders) {
        const pfn = mem.allocPages(order, owner);
        if (pfn === null) continue;
        assert.equal(pfn % 2 ** order, 0, `order ${order} block at pfn ${pfn} is not aligned`);
        got.push({ pfn, order });
      }
      for (const { pfn, order } of got) {
        for (let p = pfn; p < pfn + 2 ** order; p++) {
          const b = mem.blockOf(p);
          assert.ok(b, `pfn ${p} of a live block has no owner`);
          assert.equal(b.pfn, pfn);
          assert.equal(b.order, order);
        }
      }
      const used = got.reduce((s, b) => s + 2 ** b.order, 0);
      assert.equal(mem.freeBytes, (256 - used) * 4096);
    }),
  );
});

test('alloc_pages refuses an order above MAX_PAGE_ORDER', () => {
  const mem = smallRam();
  assert.equal(mem.allocPages(5, owner), null);
  assert.equal(mem.allocPages(-1, owner), null);
  assert.notEqual(mem.allocPages(4, owner), null);
});

test('blockOf() returns null for every page of a block after free_pages', () => {
  const mem = smallRam();
  const pfn = mem.allocPages(3, owner)!;
  assert.equal(mem.blockOf(pfn + 7)?.pfn, pfn);
  mem.freePages(pfn, 3);
  for (let p = pfn; p < pfn + 8; p++) assert.equal(mem.blockOf(p), null);
  assert.throws(() => mem.freePages(pfn, 3), /not allocated/);
});

test('free_pages merges buddies: after freeing everything, every order-MAX_PAGE_ORDER block comes back', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 60 }), fc.integer(), (orders, seed) => {
      const mem = smallRam();
      const live: { pfn: number; order: number }[] = [];
      for (const order of orders) {
        const pfn = mem.allocPages(order, owner);
        if (pfn !== null) live.push({ pfn, order });
      }
      // Free in a seed-dependent order so merging does not rely on LIFO.
      live.sort((a, b) => ((a.pfn * 2654435761) ^ seed) - ((b.pfn * 2654435761) ^ seed));
      for (const b of live) mem.freePages(b.pfn, b.order);
      assert.equal(mem.freeBytes, 2 ** 20);
      for (let i = 0; i < 16; i++) assert.notEqual(mem.allocPages(4, owner), null, `order-4 block #${i}`);
      assert.equal(mem.allocPages(0, owner), null);
    }),
  );
});

test('writeU64BE stores big-endian bytes and readU64BE reads them back', () => {
  const mem = smallRam();
  const pa = 0x2000 + 8;
  mem.writeU64BE(pa, 0x0012_3456_789a_bcde + 3);
  assert.deepEqual([...mem.read(pa, 8)], [0x00, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xe1]);
  assert.equal(mem.readU64BE(pa), 0x0012_3456_789a_bce1);
  mem.write(pa + 8, Uint8Array.from([0, 0, 0, 0x30, 0, 0, 0, 3]));
  assert.equal(mem.readU64BE(pa + 8), 0x30_0000_0003);
});

test('a page never written reads as zeros', () => {
  const mem = smallRam();
  assert.equal(mem.readU64BE(0x5000), 0);
  assert.deepEqual([...mem.read(0x5ffc, 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
});

test('pages allocated again read as zeros, whatever storage they reuse', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 2 ** 40 })), { minLength: 1, maxLength: 40 }), (ops) => {
      const mem = smallRam();
      // What RAM should hold: each written page's one nonzero word (offset, value).
      const want = new Map<number, [number, number]>();
      const live: { pfn: number; order: number }[] = [];
      const check = (pfn: number) => {
        const w = want.get(pfn);
        for (let off = 0; off < 4096; off += 8) {
          const v = mem.readU64BE(pfn * 4096 + off);
          assert.equal(v, w && w[0] === off ? w[1] : 0, `page ${pfn} word at ${off}`);
        }
      };
      for (const [order, value] of ops) {
        const pfn = mem.allocPages(order, owner);
        if (pfn === null) {
          const b = live.shift();
          if (b) mem.freePages(b.pfn, b.order);
          continue;
        }
        for (let i = 0; i < 1 << order; i++) want.delete(pfn + i);
        // Write one word of each page at an offset of its own: their storage may be pages
        // dropped by earlier allocations, whose old words must not show.
        for (let i = 0; i < 1 << order; i++) {
          const off = ((value + i) % 512) * 8;
          mem.writeU64BE((pfn + i) * 4096 + off, value + i);
          want.set(pfn + i, [off, value + i]);
          check(pfn + i);
        }
        live.push({ pfn, order });
        if (live.length > 3) {
          const b = live.shift()!;
          mem.freePages(b.pfn, b.order); // freed pages keep their contents until allocated again
        }
      }
      for (const p of want.keys()) check(p);
    }),
  );
});

test('readSmall and peekU64BE read what readInto and readU64BE read, and fail where they fail', () => {
  // 4K pages up to 2^33 bytes: addresses past 2^32, past RAM, across a page's end.
  const ram = 2 ** 33;
  const addr = fc.oneof(
    fc.integer({ min: 0, max: 3 * 4096 }),
    fc.integer({ min: 2 ** 32 - 4096, max: 2 ** 32 + 4096 }),
    fc.integer({ min: ram - 4096, max: ram + 4096 }),
    fc.constantFrom(-8, -1, 0.5, 2 ** 32 - 4),
  );
  const run = (f: () => unknown) => {
    try {
      return f();
    } catch (e) {
      return e instanceof RangeError ? 'RangeError' : e;
    }
  };
  fc.assert(
    fc.property(
      fc.array(fc.tuple(addr, fc.integer({ min: 0, max: 2 ** 53 - 1 })), { maxLength: 20 }),
      fc.array(fc.tuple(addr, fc.integer({ min: 0, max: 40 })), { maxLength: 40 }),
      (writes, reads) => {
        const mem = new PhysMemory({ ramBytes: ram, pageShift: 12, maxPageOrder: 4 });
        for (const [pa, v] of writes) run(() => mem.writeU64BE(Math.floor(pa / 8) * 8, v));
        for (const [pa, len] of reads) {
          const fast = new Uint8Array(len).fill(7);
          const slow = new Uint8Array(len).fill(7);
          assert.deepEqual(
            run(() => mem.readSmall(pa, fast)),
            run(() => mem.readInto(pa, slow)),
            `read of ${len} at ${pa}`,
          );
          assert.deepEqual(fast, slow, `read of ${len} at ${pa}`);
          assert.deepEqual(
            run(() => mem.peekU64BE(pa)),
            run(() => mem.readU64BE(pa)),
            `u64 at ${pa}`,
          );
        }
      },
    ),
    { numRuns: 300 },
  );
});
