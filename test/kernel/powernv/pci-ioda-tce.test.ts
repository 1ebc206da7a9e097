/** pci-ioda-tce: VFIO accounting of a table, the table layout, on-demand levels and freeing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventLog } from '../../../src/base/events.js';
import { PhysMemory } from '../../../src/hw/memory.js';
import { DMA_BIDIRECTIONAL } from '../../../src/hw/tce.js';
import { IommuTable, type IommuTableOps } from '../../../src/kernel/iommu-table.js';
import {
  pnvPciIoda2GetTableSize,
  pnvPciIoda2TableAllocPages,
  pnvPciIoda2TableFreePages,
  pnvTce,
  pnvTceBuild,
  pnvTceFree,
  pnvTceGet,
  pnvTceUseraddrptr,
  type TceMemory,
} from '../../../src/kernel/powernv/pci-ioda-tce.js';
import { KernelLog } from '../../../src/kernel/printk.js';

const K = 1024;
const M = K * K;
const G = M * K;
const EINVAL = -22;
const ENOMEM = -12;

/** The functions under test never call the table's ops. */
const ops = {} as IommuTableOps;

function ctx64K(): TceMemory {
  return { mem: new PhysMemory({ ramBytes: 2 ** 31, pageShift: 16, maxPageOrder: 8 }), klog: new KernelLog(new EventLog()) };
}
function ctx4K(): TceMemory {
  return { mem: new PhysMemory({ ramBytes: 2 ** 31, pageShift: 12, maxPageOrder: 10 }), klog: new KernelLog(new EventLog()) };
}

function alloc(ctx: TceMemory, pageShift: number, window: bigint, levels: number, userCopy = false) {
  const tbl = new IommuTable(ops);
  const rc = pnvPciIoda2TableAllocPages(ctx, tbl, 0, 0n, pageShift, window, levels, userCopy);
  return { tbl, rc };
}

// ---- pnv_pci_ioda2_get_table_size ----

test('get_table_size matches the VmLck deltas recorded on a 64K kernel', () => {
  // [IOMMU page shift, window, levels, bytes charged]; every row also agrees with kernel.md §2.10.
  const cases: [number, bigint, number, number][] = [
    [12, 2n ** 31n, 1, 8 * M],
    [16, 2n ** 32n, 1, 1 * M],
    [16, 2n ** 30n, 1, 256 * K],
    [16, 2n ** 26n, 1, 128 * K],
    [12, 2n ** 40n, 2, 4 * G + 256 * K],
    [12, 2n ** 40n, 3, 4 * G + 640 * K],
    [12, 2n ** 40n, 4, 4 * G + 768 * K],
    [16, 2n ** 36n, 2, 16 * M + 128 * K],
  ];
  for (const [shift, window, levels, bytes] of cases) {
    assert.equal(pnvPciIoda2GetTableSize(16, shift, window, levels), bytes, `page ${shift} window 2^${window.toString(2).length - 1} levels ${levels}`);
  }
});

test('get_table_size is 0 for levels 0 or 6 and for a window that is not a power of two', () => {
  assert.equal(pnvPciIoda2GetTableSize(16, 16, 2n ** 32n, 0), 0);
  assert.equal(pnvPciIoda2GetTableSize(16, 16, 2n ** 32n, 6), 0);
  assert.equal(pnvPciIoda2GetTableSize(16, 16, 3n * 2n ** 30n, 1), 0);
  assert.equal(pnvPciIoda2GetTableSize(16, 16, 0n, 1), 0);
  assert.notEqual(pnvPciIoda2GetTableSize(16, 16, 2n ** 32n, 5), 0);
});

// ---- pnv_pci_ioda2_table_alloc_pages: layout ----

test('table_alloc_pages rounds the window up to a whole kernel page of TCEs (recorded it_size)', () => {
  // [kernel, IOMMU page shift, requested window, it_size << page_shift]
  const cases: ['64K' | '4K', number, bigint, bigint][] = [
    ['64K', 16, 256n * BigInt(M), 512n * BigInt(M)],
    ['64K', 16, 64n * BigInt(K), 512n * BigInt(M)],
    ['64K', 12, 4n * BigInt(K), 32n * BigInt(M)],
    ['64K', 21, 4n * BigInt(G), 16n * BigInt(G)],
    ['64K', 30, 2n ** 40n, 8n * 2n ** 40n],
    ['4K', 16, 64n * BigInt(K), 32n * BigInt(M)],
    ['4K', 16, 64n * BigInt(M), 64n * BigInt(M)],
  ];
  for (const [kernel, shift, window, expected] of cases) {
    const { tbl, rc } = alloc(kernel === '64K' ? ctx64K() : ctx4K(), shift, window, 1);
    assert.equal(rc, 0);
    assert.equal(tbl.windowSize, expected, `${kernel} kernel, page 2^${shift}, window ${window}`);
  }
});

test('table_alloc_pages: the (level_shift - 3) * levels + page_shift >= 55 rule', () => {
  const ok = (c: TceMemory, shift: number, levels: number) => alloc(c, shift, 2n ** 40n, levels).rc;
  // 64K kernel: every level is at least 64K (13 bits of index).
  assert.equal(ok(ctx64K(), 16, 2), 0);
  assert.equal(ok(ctx64K(), 16, 3), EINVAL); // 13*3 + 16 = 55
  assert.equal(ok(ctx64K(), 12, 3), 0); // 13*3 + 12 = 51
  assert.equal(ok(ctx64K(), 12, 4), EINVAL); // 13*4 + 12 = 64
  // 4K kernel: 4K levels (9 bits) leave room for more levels.
  assert.equal(ok(ctx4K(), 16, 3), 0);
  assert.equal(ok(ctx4K(), 12, 4), 0);
  assert.equal(ok(ctx4K(), 12, 5), EINVAL); // 9*5 + 12 = 57
});

test('table_alloc_pages rejects levels 0/6 and a window that is not a power of two', () => {
  assert.equal(alloc(ctx64K(), 16, 2n ** 32n, 0).rc, EINVAL);
  assert.equal(alloc(ctx64K(), 16, 2n ** 32n, 6).rc, EINVAL);
  assert.equal(alloc(ctx64K(), 16, 3n * 2n ** 30n, 1).rc, EINVAL);
});

test('table_alloc_pages: a 1-level 64K/1T table needs an order-11 block → ENOMEM with the kernel message', () => {
  const ctx = ctx64K();
  const free = ctx.mem.freeBytes;
  const { tbl, rc } = alloc(ctx, 16, 2n ** 40n, 1);
  assert.equal(rc, ENOMEM);
  assert.deepEqual(ctx.klog.lines, ['Failed to allocate a TCE memory, level shift=27']);
  assert.equal(ctx.mem.freeBytes, free);
  assert.equal(tbl.levelBlocks.size, 0);
});

test('table_alloc_pages allocates only the top level (and the userspace view) up front', () => {
  const ctx = ctx64K();
  const free = ctx.mem.freeBytes;
  const { tbl, rc } = alloc(ctx, 12, 2n ** 40n, 3, true);
  assert.equal(rc, 0);
  assert.equal(tbl.itIndirectLevels, 2);
  assert.equal(tbl.itLevelSize, 8192);
  assert.equal(tbl.levelBlocks.size, 2);
  assert.equal(free - ctx.mem.freeBytes, 2 * 64 * K);
  assert.equal(ctx.mem.blockOf(tbl.itBase / 65536)?.owner.kind, 'tce-table');
  assert.equal(ctx.mem.blockOf(tbl.itUserspace! / 65536)?.owner.kind, 'tce-shadow');
});

// ---- pnv_tce and friends ----

test('pnv_tce(alloc) creates a level and installs an indirect entry carrying R|W', () => {
  const ctx = ctx64K();
  const { tbl } = alloc(ctx, 12, 2n ** 30n, 2); // 2 levels of 8192 entries
  const idx = 3 * 8192 + 17;
  assert.equal(pnvTce(ctx, tbl, false, idx, false), null);
  assert.equal(tbl.levelBlocks.size, 1);
  const slot = pnvTce(ctx, tbl, false, idx, true);
  assert.notEqual(slot, null);
  assert.equal(tbl.levelBlocks.size, 2);
  const indirect = ctx.mem.readU64BE(tbl.itBase + 3 * 8);
  assert.equal(indirect & 3, 3);
  const leaf = indirect - 3;
  assert.ok(tbl.levelBlocks.has(leaf));
  assert.equal(slot, leaf + 17 * 8);
  // The same index now resolves without allocating.
  assert.equal(pnvTce(ctx, tbl, false, idx, false), slot);
  assert.equal(tbl.levelBlocks.size, 2);
});

test('pnv_tce_free skips absent leaf levels and zeroes the present TCEs', () => {
  const ctx = ctx64K();
  const { tbl } = alloc(ctx, 12, 2n ** 30n, 2);
  pnvTceBuild(ctx, tbl, 8192 + 5, 2, 0x4000_0000, DMA_BIDIRECTIONAL);
  assert.equal(pnvTceGet(ctx, tbl, 8192 + 5), 0x4000_0003);
  assert.equal(pnvTceGet(ctx, tbl, 8192 + 6), 0x4000_1003);
  assert.equal(tbl.levelBlocks.size, 2);
  pnvTceFree(ctx, tbl, 0, 3 * 8192);
  assert.equal(pnvTceGet(ctx, tbl, 8192 + 5), 0);
  assert.equal(pnvTceGet(ctx, tbl, 8192 + 6), 0);
  // Levels 0 and 2 were absent and stay absent; the present leaf is kept (emptied, not freed).
  assert.equal(tbl.levelBlocks.size, 2);
  assert.equal(pnvTce(ctx, tbl, false, 5, false), null);
  assert.equal(pnvTce(ctx, tbl, false, 2 * 8192, false), null);
});

test('table_free_pages returns every level of both views to PhysMemory', () => {
  const ctx = ctx64K();
  const free = ctx.mem.freeBytes;
  const { tbl } = alloc(ctx, 12, 2n ** 40n, 3, true);
  pnvTceBuild(ctx, tbl, 0, 1, 0x4000_0000, DMA_BIDIRECTIONAL);
  pnvTceBuild(ctx, tbl, 2 ** 26 + 9, 1, 0x4000_0000, DMA_BIDIRECTIONAL);
  assert.notEqual(pnvTceUseraddrptr(ctx, tbl, 8192 * 5, true), null);
  // top + 2 mid + 2 leaves (HW), top + mid + leaf (userspace view)
  assert.equal(tbl.levelBlocks.size, 8);
  const pfns = [...tbl.levelBlocks.keys()].map((pa) => pa / 65536);
  for (const pfn of pfns) assert.notEqual(ctx.mem.blockOf(pfn), null);
  pnvPciIoda2TableFreePages(ctx, tbl);
  assert.equal(tbl.levelBlocks.size, 0);
  for (const pfn of pfns) assert.equal(ctx.mem.blockOf(pfn), null);
  assert.equal(ctx.mem.freeBytes, free);
});
