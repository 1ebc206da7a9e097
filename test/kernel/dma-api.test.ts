/** The powerpc DMA API over an iommu_table: map_page, map_sg, alloc_coherent, bypass, no table. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { U64_MAX } from '../../src/base/bits.js';
import { neg } from '../../src/base/errno.js';
import { type EventBody, EventLog } from '../../src/base/events.js';
import { DMA_BIDIRECTIONAL, DMA_NONE, DMA_TO_DEVICE } from '../../src/hw/tce.js';
import {
  type CoherentPages,
  type DmaDevice,
  dmaAllocCoherent,
  dmaFreeCoherent,
  dmaGetSegBoundaryNrPages,
  dmaMapPage,
  dmaMapSg,
  dmaUnmapPage,
  dmaUnmapSg,
  getOrder,
  iommuNumPages,
  PCI_DMA_MAX_SEG_SIZE,
  PCI_DMA_SEG_BOUNDARY,
  type SgSegment,
} from '../../src/kernel/dma-api.js';
import { iommuTableInUse } from '../../src/kernel/iommu.js';
import type { IommuTable } from '../../src/kernel/iommu-table.js';
import { fakeTable, setBits } from './fake-table.js';

const K4 = 4096;
const K64 = 65536;

function device(table: IommuTable | null, over: Partial<DmaDevice> = {}): DmaDevice {
  return {
    name: '0000:01:00.0',
    dmaMask: U64_MAX,
    table,
    dmaOffset: 0n,
    bypass: false,
    maxSegSize: PCI_DMA_MAX_SEG_SIZE,
    segBoundaryMask: PCI_DMA_SEG_BOUNDARY,
    ...over,
  };
}

/** An EventLog and the bodies (seq stripped) of everything emitted on it. */
function recorder(): { log: EventLog; events: EventBody[] } {
  const log = new EventLog();
  const events: EventBody[] = [];
  log.subscribe(({ seq: _seq, ...body }) => events.push(body as EventBody));
  return { log, events };
}

/** A page allocator handing out naturally aligned blocks upwards from 256 MiB. */
function fakePages(pageShift: number): CoherentPages & { allocs: number[]; frees: [number, number][] } {
  let next = 0x1000_0000;
  const allocs: number[] = [];
  const frees: [number, number][] = [];
  return {
    allocs,
    frees,
    alloc(order) {
      allocs.push(order);
      const block = 2 ** (order + pageShift);
      const pa = Math.ceil(next / block) * block;
      next = pa + block;
      return pa;
    },
    free(pa, order) {
      frees.push([pa, order]);
    },
  };
}

test('iommu_num_pages: (addr % size + len) / size rounded up, for any address, length and page size', () => {
  const addr = fc.oneof(fc.nat(2 ** 31), fc.maxSafeNat(), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
  const len = fc.oneof(fc.nat(2 ** 31), fc.integer({ min: 2 ** 31 - 2 ** 20, max: 2 ** 33 }));
  fc.assert(
    fc.property(addr, len, fc.integer({ min: 0, max: 34 }), (a, l, shift) => {
      const size = 2 ** shift;
      const want = ((BigInt(a) % BigInt(size)) + BigInt(l) + BigInt(size) - 1n) / BigInt(size);
      assert.equal(iommuNumPages(a, l, size), Number(want));
    }),
    { numRuns: 3000 },
  );
});

test('helpers: iommu_num_pages, get_order, dma_get_seg_boundary_nr_pages', () => {
  const numPages: [number | bigint, number, number, number][] = [
    [0x1000, 0x1000, K4, 1],
    [0x1800, 0x1000, K4, 2],
    [0x1fff, 1, K4, 1],
    [0x1fff, 2, K4, 2],
    [0x10000n, 0x20000, K64, 2],
    [0x10001n, 0x20000, K64, 3],
  ];
  for (const [addr, len, ps, n] of numPages) assert.equal(iommuNumPages(addr, len, ps), n, `${addr}+${len}`);
  const orders: [number, number, number][] = [
    [1, 12, 0],
    [K4, 12, 0],
    [K4 + 1, 12, 1],
    [2 * K4, 12, 1],
    [2 * K4 + 1, 12, 2],
    [32 << 20, 12, 13],
    [0, 12, 52],
    [K64, 16, 0],
  ];
  for (const [size, shift, order] of orders) assert.equal(getOrder(size, shift), order, `get_order(${size})`);
  assert.equal(dmaGetSegBoundaryNrPages(device(null), 12), 2 ** 20);
  assert.equal(dmaGetSegBoundaryNrPages(device(null, { segBoundaryMask: U64_MAX }), 16), 2 ** 48);
});

test('dma_map_page: pages touched, offset kept, TCEs set, event', () => {
  const { tbl, calls } = fakeTable({ itSize: 4096 });
  const { log, events } = recorder();
  const dev = device(tbl);
  const dma = dmaMapPage(dev, 0x1234_5800, K4, DMA_TO_DEVICE, 16, 0, log);
  assert.equal(dma, 0x1800n, 'entry 1 (entry 0 is reserved) | 0x800');
  assert.deepEqual(calls, [{ op: 'set', index: 1, npages: 2, pa: 0x1234_5000, dir: DMA_TO_DEVICE }]);
  assert.deepEqual(events, [{ layer: 'kernel', kind: 'dma-map', device: dev.name, dma: 0x1800n, npages: 2 }]);

  calls.length = 0;
  dmaUnmapPage(dev, dma!, K4, DMA_TO_DEVICE, log);
  assert.deepEqual(calls, [{ op: 'clear', index: 1, npages: 2 }]);
  assert.deepEqual(events[1], { layer: 'kernel', kind: 'dma-unmap', device: dev.name, dma: 0x1800n, npages: 2 });
  assert.equal(iommuTableInUse(tbl), false);
});

test('dma_map_page: a CPU-page-aligned mapping of ≥ PAGE_SIZE is aligned to a CPU page', () => {
  // 4096 entries: pool [0, 3072), large pool [3072, 4096); both hints put 5 entries past the start.
  const cases = [
    // kernel PAGE_SHIFT, IOMMU page shift, pa, size → entry
    { name: '64K kernel, 4K TCEs, aligned', pageShift: 16, tceShift: 12, pa: 0x100000, size: K64, entry: 3088 },
    { name: '64K kernel, 4K TCEs, smaller than a page', pageShift: 16, tceShift: 12, pa: 0x100000, size: K64 - 1, entry: 3077 },
    { name: '64K kernel, 4K TCEs, unaligned pa', pageShift: 16, tceShift: 12, pa: 0x101000, size: K64, entry: 3077 },
    { name: '4K kernel, 4K TCEs', pageShift: 12, tceShift: 12, pa: 0x100000, size: K64, entry: 3077 },
    { name: '4K kernel, 64K TCEs', pageShift: 12, tceShift: 16, pa: 0x100000, size: K64, entry: 5 },
  ];
  for (const c of cases) {
    const { tbl } = fakeTable({ itSize: 4096, pageShift: c.tceShift });
    tbl.pools[0]!.hint = 5;
    tbl.largePool.hint = tbl.largePool.start + 5;
    const dma = dmaMapPage(device(tbl), c.pa, c.size, DMA_TO_DEVICE, c.pageShift, 0, new EventLog());
    assert.equal(dma! >> BigInt(c.tceShift), BigInt(c.entry), c.name);
  }
});

test('dma_map_page: a mapping never crosses the device segment boundary', () => {
  const { tbl } = fakeTable({ itSize: 4096 });
  tbl.pools[0]!.hint = 12;
  const dev = device(tbl, { segBoundaryMask: 0xffffn });
  assert.equal(dmaMapPage(dev, 0x200000, 8 * K4, DMA_TO_DEVICE, 12, 0, new EventLog()), 16n * BigInt(K4));
});

test('dma_map_page: a 32-bit mask stays below 4 GiB in a larger window', () => {
  const { tbl } = fakeTable({ itSize: 131072, pageShift: 16 });
  const dev = device(tbl, { dmaMask: 0xffffffffn });
  for (let cpu = 0; cpu < 8; cpu++) {
    const dma = dmaMapPage(dev, 0x200000, K64, DMA_TO_DEVICE, 16, cpu, new EventLog());
    assert.ok(dma !== null && dma + BigInt(K64) <= 0xffffffffn, `cpu ${cpu}: ${dma}`);
  }
});

test('dma_unmap_page outside the window prints iommu_free: invalid entry and clears nothing', () => {
  const { tbl, calls } = fakeTable({ itSize: 1024, itOffset: 0x100 });
  const { log, events } = recorder();
  dmaUnmapPage(device(tbl), 0x1000n, K4, DMA_TO_DEVICE, log);
  assert.deepEqual(calls, []);
  assert.deepEqual(
    events.map((e) => (e.kind === 'printk' ? e.text : e.kind)),
    ['iommu_free: invalid entry', '\tentry     = 0x1', '\tdma_addr  = 0x1000', '\tsize      = 0x400', '\tstartOff  = 0x100', '\tindex     = 0x0'],
  );
});

test('bypass: bus address = pa + dma_offset, no table touched', () => {
  const { tbl, calls } = fakeTable({ itSize: 1024 });
  const { log, events } = recorder();
  const offset = 0x0800_0000_0000_0000n;
  const dev = device(tbl, { bypass: true, dmaOffset: offset });
  assert.equal(dmaMapPage(dev, 0x1234_5678, 100, DMA_TO_DEVICE, 16, 0, log), offset + 0x1234_5678n);
  dmaUnmapPage(dev, offset + 0x1234_5678n, 100, DMA_TO_DEVICE, log);
  const sg = dmaMapSg(
    dev,
    [
      { pa: 0x1000, len: K4 },
      { pa: 0x2000, len: K4 },
    ],
    DMA_TO_DEVICE,
    true,
    12,
    0,
    log,
  );
  assert.equal(sg.ret, 2, 'dma_direct_map_sg does not merge');
  assert.deepEqual(sg.sg, [
    { dmaAddress: offset + 0x1000n, dmaLength: K4 },
    { dmaAddress: offset + 0x2000n, dmaLength: K4 },
  ]);
  const pages = fakePages(12);
  const buf = dmaAllocCoherent(dev, 3 * K4, pages, 12, 0, log);
  assert.deepEqual(buf, { pa: 0x1000_0000, dma: offset + 0x1000_0000n });
  dmaFreeCoherent(dev, 3 * K4, buf!, pages, 12, log);
  assert.deepEqual(pages.frees, [[0x1000_0000, 2]]);
  assert.deepEqual(calls, []);
  assert.deepEqual(
    events.map((e) => (e.kind === 'dma-map' || e.kind === 'dma-unmap' ? `${e.kind} ${e.npages}` : e.kind)),
    ['dma-map 0', 'dma-unmap 0', 'dma-map 0', 'dma-map 0', 'dma-map 0', 'dma-unmap 0'],
  );
});

test('no table and no bypass (a NULL or dangling table pointer): every mapping fails', () => {
  const { log, events } = recorder();
  const dev = device(null);
  const pages = fakePages(12);
  assert.equal(dmaMapPage(dev, 0x1000, K4, DMA_TO_DEVICE, 12, 0, log), null);
  assert.equal(dmaMapSg(dev, [{ pa: 0x1000, len: K4 }], DMA_TO_DEVICE, true, 12, 0, log).ret, neg('EINVAL'));
  assert.equal(dmaAllocCoherent(dev, K4, pages, 12, 0, log), null);
  assert.deepEqual(pages.allocs, []);
  dmaUnmapPage(dev, 0x1000n, K4, DMA_TO_DEVICE, log);
  assert.deepEqual(events, []);
});

test('DMA_NONE is a BUG', () => {
  const { tbl } = fakeTable({ itSize: 64 });
  assert.throws(() => dmaMapPage(device(tbl), 0x1000, K4, DMA_NONE, 12, 0, new EventLog()), /BUG/);
  assert.throws(() => dmaUnmapSg(device(tbl), [], DMA_NONE, new EventLog()), /BUG/);
});

const P = 0x40_0000;
const sgCases: {
  name: string;
  segs: SgSegment[];
  vmerge?: boolean;
  maxSegSize?: number;
  ret: number;
  /** sg_dma_len of every element; sg_dma_address of the non-empty ones as entry << 12 | offset. */
  lens: number[];
  dmas: (bigint | null)[];
}[] = [
  {
    name: 'contiguous pages merge into one segment',
    segs: [
      { pa: P, len: K4 },
      { pa: P + 0x10000, len: K4 },
      { pa: P + 0x5000, len: K4 },
    ],
    ret: 1,
    lens: [3 * K4, 0, 0],
    dmas: [0x1000n, null, null],
  },
  {
    name: 'iommu=novmerge',
    segs: [
      { pa: P, len: K4 },
      { pa: P + 0x10000, len: K4 },
      { pa: P + 0x5000, len: K4 },
    ],
    vmerge: false,
    ret: 3,
    lens: [K4, K4, K4],
    dmas: [0x1000n, 0x2000n, 0x3000n],
  },
  {
    name: 'max_seg_size caps a merged segment',
    segs: [
      { pa: P, len: K4 },
      { pa: P + 0x10000, len: K4 },
      { pa: P + 0x5000, len: K4 },
    ],
    maxSegSize: 2 * K4,
    ret: 2,
    lens: [2 * K4, K4, 0],
    dmas: [0x1000n, 0x3000n, null],
  },
  {
    name: 'a zero-length element is skipped and breaks merging',
    segs: [
      { pa: P, len: K4 },
      { pa: P + 0x9000, len: 0 },
      { pa: P + 0x5000, len: K4 },
    ],
    ret: 2,
    lens: [K4, K4, 0],
    dmas: [0x1000n, 0x2000n, null],
  },
  {
    name: 'a partial first page merges when it ends on a page boundary',
    segs: [
      { pa: P + 0x800, len: 0x800 },
      { pa: P + 0x7000, len: 0x2000 },
    ],
    ret: 1,
    lens: [0x2800, 0],
    dmas: [0x1800n, null],
  },
  {
    name: 'a partial page that does not reach the boundary does not merge',
    segs: [
      { pa: P, len: 0x800 },
      { pa: P + 0x7000, len: K4 },
    ],
    ret: 2,
    lens: [0x800, K4],
    dmas: [0x1000n, 0x2000n],
  },
  {
    name: 'a leading zero-length element leaves DMA segment 0 empty (kernel quirk)',
    segs: [
      { pa: P, len: 0 },
      { pa: P + 0x5000, len: K4 },
    ],
    ret: 2,
    lens: [0, K4],
    dmas: [null, 0x1000n],
  },
];

test('dma_map_sg: handle chaining and virtual merging', async (t) => {
  for (const c of sgCases) {
    await t.test(c.name, () => {
      const { tbl, calls } = fakeTable({ itSize: 4096 });
      const dev = device(tbl, { maxSegSize: c.maxSegSize ?? PCI_DMA_MAX_SEG_SIZE });
      const { log, events } = recorder();
      const m = dmaMapSg(dev, c.segs, DMA_TO_DEVICE, c.vmerge ?? true, 12, 0, log);
      assert.equal(m.ret, c.ret);
      assert.deepEqual(
        m.sg.map((s) => s.dmaLength),
        c.lens,
      );
      c.dmas.forEach((d, i) => {
        if (d !== null) assert.equal(m.sg[i]!.dmaAddress, d, `element ${i}`);
      });
      assert.equal(calls.length, c.segs.filter((s) => s.len > 0).length, 'one ops.set per non-empty element');
      const live = m.sg.filter((s) => s.dmaLength > 0);
      assert.deepEqual(
        events.map((e) => (e.kind === 'dma-map' ? e.dma : e.kind)),
        live.map((s) => s.dmaAddress),
        'one dma-map per DMA segment',
      );
    });
  }
});

test('dma_unmap_sg frees every DMA segment', () => {
  const { tbl } = fakeTable({ itSize: 4096 });
  const dev = device(tbl, { maxSegSize: 2 * K4 });
  const { log, events } = recorder();
  const segs = [0, 1, 2, 3, 4].map((i) => ({ pa: P + i * 0x10000, len: K4 }));
  const m = dmaMapSg(dev, segs, DMA_TO_DEVICE, true, 12, 0, log);
  assert.equal(m.ret, 3);
  events.length = 0;
  dmaUnmapSg(dev, m.sg, DMA_TO_DEVICE, log);
  assert.equal(iommuTableInUse(tbl), false);
  assert.deepEqual(
    events.map((e) => (e.kind === 'dma-unmap' ? e.npages : -1)),
    [2, 2, 1],
  );
});

test('dma_unmap_sg stops at an empty first segment: the leading-zero mapping leaks (kernel quirk)', () => {
  const { tbl } = fakeTable({ itSize: 4096 });
  const dev = device(tbl);
  const m = dmaMapSg(
    dev,
    [
      { pa: P, len: 0 },
      { pa: P, len: K4 },
    ],
    DMA_TO_DEVICE,
    true,
    12,
    0,
    new EventLog(),
  );
  dmaUnmapSg(dev, m.sg, DMA_TO_DEVICE, new EventLog());
  assert.equal(iommuTableInUse(tbl), true);
});

test('dma_map_sg failure frees what was built and returns -EIO', () => {
  // 1 pool [0, 48), large pool [48, 64): 60 pages never fit.
  const { tbl, calls } = fakeTable({ itSize: 64 });
  const { log, events } = recorder();
  const segs = [
    { pa: P, len: 8 * K4 },
    { pa: P + 0x100000, len: 60 * K4 },
  ];
  const m = dmaMapSg(device(tbl), segs, DMA_TO_DEVICE, true, 12, 0, log);
  assert.equal(m.ret, neg('EIO'));
  assert.equal(iommuTableInUse(tbl), false);
  assert.deepEqual(
    calls.map((c) => c.op),
    ['set', 'clear'],
  );
  assert.deepEqual(m.sg, [
    { dmaAddress: 0x1000n, dmaLength: 0 },
    { dmaAddress: 0n, dmaLength: 0 },
  ]);
  assert.deepEqual(
    events.map((e) => (e.kind === 'printk' ? e.text : e.kind)),
    [`0000:01:00.0: iommu_alloc failed, tbl #${tbl.id} vaddr c000000000500000 npages 60`],
  );
});

test('dma_map_sg: a failing ops.set leaks that element (kernel quirk), the rest is freed', () => {
  const { tbl, setResults } = fakeTable({ itSize: 4096 });
  setResults.push(0, 1);
  const m = dmaMapSg(
    device(tbl),
    [
      { pa: P, len: K4 },
      { pa: P + 0x10000, len: K4 },
    ],
    DMA_TO_DEVICE,
    true,
    12,
    0,
    new EventLog(),
  );
  assert.equal(m.ret, neg('EIO'));
  assert.deepEqual(setBits(tbl), [0, 2], 'entry 1 freed, entry 2 leaked');
});

test('dma_alloc_coherent: get_order(size) ≥ IOMAP_MAX_ORDER is refused before allocating', () => {
  const { tbl } = fakeTable({ itSize: 524288 });
  const { log, events } = recorder();
  const pages = fakePages(12);
  assert.equal(dmaAllocCoherent(device(tbl), 32 << 20, pages, 12, 0, log), null);
  assert.deepEqual(pages.allocs, []);
  assert.deepEqual(events, [{ layer: 'kernel', kind: 'printk', text: '0000:01:00.0: iommu_alloc_consistent size too large: 0x2000000' }]);
  const buf = dmaAllocCoherent(device(tbl), 16 << 20, pages, 12, 0, log);
  assert.ok(buf !== null, 'order 12 is allowed');
  assert.equal(Number(buf.dma >> 12n) % 4096, 0, 'io_order 12: naturally aligned');
  assert.deepEqual(pages.allocs, [12]);
});

test('dma_alloc_coherent: IOMMU range of the page-aligned size, naturally aligned, bidirectional', () => {
  const { tbl, calls } = fakeTable({ itSize: 4096 });
  const { log, events } = recorder();
  const pages = fakePages(12);
  const dev = device(tbl);
  tbl.pools[0]!.hint = 5;
  const buf = dmaAllocCoherent(dev, 3 * K4 - 100, pages, 12, 0, log);
  assert.deepEqual(pages.allocs, [2], '4 CPU pages');
  assert.deepEqual(buf, { pa: 0x1000_0000, dma: 8n * BigInt(K4) });
  assert.deepEqual(calls, [{ op: 'set', index: 8, npages: 3, pa: 0x1000_0000, dir: DMA_BIDIRECTIONAL }]);

  dmaFreeCoherent(dev, 3 * K4 - 100, buf!, pages, 12, log);
  assert.deepEqual(calls[1], { op: 'clear', index: 8, npages: 3 });
  assert.deepEqual(pages.frees, [[0x1000_0000, 2]]);
  assert.equal(iommuTableInUse(tbl), false);
  assert.deepEqual(
    events.map((e) => (e.kind === 'dma-map' || e.kind === 'dma-unmap' ? `${e.kind} ${e.dma} ${e.npages}` : e.kind)),
    ['dma-map 32768 3', 'dma-unmap 32768 3'],
  );
});

test('dma_alloc_coherent: no space in the window frees the pages again', () => {
  const { tbl } = fakeTable({ itSize: 64 });
  const pages = fakePages(12);
  assert.equal(dmaAllocCoherent(device(tbl), 40 * K4, pages, 12, 0, new EventLog()), null);
  assert.deepEqual(pages.allocs, [6]);
  assert.deepEqual(pages.frees, [[0x1000_0000, 6]]);
});
