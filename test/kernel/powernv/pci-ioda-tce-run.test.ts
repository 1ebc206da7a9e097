/**
 * pnvTceXchgRun against pnvTceXchg entry by entry: random runs over random table shapes (levels,
 * IOMMU and kernel page sizes, with or without room for every level) leave the same table bytes
 * and levels, give the same old TCEs and errors, and emit the same events in the same order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type TcelabEvent, EventLog } from '../../../src/base/events.js';
import { PhysMemory } from '../../../src/hw/memory.js';
import { DMA_NONE, type DmaDirection, tceAddr, tceDirection } from '../../../src/hw/tce.js';
import { IommuTable, type IommuTableOps, TceRun, type XchgResult } from '../../../src/kernel/iommu-table.js';
import { pnvPciIoda2TableAllocPages, pnvTce, pnvTceRunLength, pnvTceXchg, pnvTceXchgRun, type TceMemory } from '../../../src/kernel/powernv/pci-ioda-tce.js';
import { KernelLog } from '../../../src/kernel/printk.js';

/** The functions under test never call the table's ops. */
const ops = {} as IommuTableOps;

interface Shape {
  kernelShift: number;
  ramPages: number;
  pageShift: number;
  windowShift: number;
  levels: number;
}

interface Op {
  /** Entry relative to the window's start. */
  at: number;
  count: number;
  dir: DmaDirection;
  /** IOMMU page number of the first new real address (then +1 per entry). */
  page: number;
}

interface Side {
  ctx: TceMemory;
  tbl: IommuTable;
  events: TcelabEvent[];
}

/** A table of the shape, or null when the kernel refuses it (levels too deep, no room for the top level). */
function side(s: Shape): Side | null {
  const log = new EventLog();
  const events: TcelabEvent[] = [];
  log.subscribe((e) => events.push(e), { verbose: true });
  const mem = new PhysMemory({ ramBytes: s.ramPages * 2 ** s.kernelShift, pageShift: s.kernelShift, maxPageOrder: 10 }, log);
  const ctx: TceMemory = { mem, klog: new KernelLog(log) };
  const tbl = new IommuTable(ops, 1);
  const rc = pnvPciIoda2TableAllocPages(ctx, tbl, 0, 1n << 40n, s.pageShift, 2n ** BigInt(s.windowShift), s.levels, true);
  if (rc === -22 || rc === -12) return null;
  assert.equal(rc, 0);
  return { ctx, tbl, events };
}

/** Per entry, as before runs: stops at the first failure. Returns [old TCE address, dir, ret] per entry attempted. */
function perEntry(x: Side, op: Op): number[][] {
  const out: number[][] = [];
  const r: XchgResult = { ret: 0, hpa: 0, dir: DMA_NONE };
  for (let k = 0; k < op.count; k++) {
    const hpa = op.dir === DMA_NONE ? 0 : (op.page + k) * x.tbl.pageSize;
    pnvTceXchg(x.ctx, x.tbl, x.tbl.itOffset + op.at + k, hpa, op.dir, r);
    out.push([r.hpa, r.dir, r.ret]);
    if (r.ret) break;
  }
  return out;
}

/** The same through runs no longer than runLength. */
function byRuns(x: Side, op: Op, run: TceRun): number[][] {
  const out: number[][] = [];
  for (let k = 0; k < op.count; ) {
    const index = x.tbl.itOffset + op.at + k;
    const n = Math.min(op.count - k, run.capacity, pnvTceRunLength(x.tbl, index));
    assert.ok(n >= 1);
    for (let j = 0; j < n; j++) run.hpa[j] = op.dir === DMA_NONE ? 0 : (op.page + k + j) * x.tbl.pageSize;
    const done = pnvTceXchgRun(x.ctx, x.tbl, index, n, op.dir, run);
    for (let j = 0; j < done; j++) out.push([tceAddr(run.old[j]!), tceDirection(run.old[j]!), j === done - 1 ? run.ret : 0]);
    if (run.ret) break;
    k += done;
  }
  return out;
}

/** Every entry of the window (and a little past it) as the hardware would read it. */
function entries(x: Side, upTo: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < upTo; i++) {
    const slot = pnvTce(x.ctx, x.tbl, false, i, false);
    out.push(slot === null || !x.ctx.mem.isRam(slot) ? 0 : x.ctx.mem.readU64BE(slot));
  }
  return out;
}

const shape = fc
  .record({
    kernelShift: fc.constantFrom(12, 16),
    pageShift: fc.constantFrom(12, 16, 21, 24),
    levels: fc.integer({ min: 1, max: 4 }),
    entriesShift: fc.integer({ min: 9, max: 18 }),
    ramPages: fc.constantFrom(12, 24, 4096),
  })
  .filter((s) => s.levels === 1 || s.entriesShift >= 2 * s.levels)
  .map((s): Shape => ({ ...s, windowShift: s.pageShift + s.entriesShift }));

test('pnv_tce_xchg on runs of a leaf = pnv_tce_xchg entry by entry (bytes, old TCEs, errors, events)', () => {
  fc.assert(
    fc.property(
      shape,
      fc.array(
        fc.record({
          at: fc.nat(),
          count: fc.integer({ min: 1, max: 3000 }),
          dir: fc.constantFrom<DmaDirection>(0, 1, 2, 3, 3),
          page: fc.nat({ max: 2 ** 20 }),
        }),
        { minLength: 1, maxLength: 16 },
      ),
      fc.integer({ min: 1, max: 700 }),
      (s, rawOps, capacity) => {
        const a = side(s);
        const b = side(s);
        fc.pre(a !== null && b !== null);
        const size = a.tbl.itSize;
        // Inside the window (a flat table is not bounds-checked past its end).
        const ops = rawOps.map((o) => ({ ...o, at: o.at % size, count: Math.min(o.count, size - (o.at % size)) }));
        const run = new TceRun(capacity);
        for (const op of ops) assert.deepEqual(byRuns(a, op, run), perEntry(b, op), `op ${JSON.stringify(op)}`);
        assert.deepEqual(entries(a, Math.min(size, 1 << 14)), entries(b, Math.min(size, 1 << 14)));
        assert.deepEqual([...a.tbl.levelBlocks], [...b.tbl.levelBlocks]);
        assert.deepEqual(a.events, b.events);
      },
    ),
    { numRuns: 150 },
  );
});
