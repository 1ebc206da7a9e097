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
