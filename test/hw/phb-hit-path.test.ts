/**
 * The PHB's DMA hit path (a number address, nobody listening) against the whole path: two
 * identical PHBs run the same random DMAs, TCE changes, kills and thaws, one of them with a
 * listener (which always takes the whole way). Results, data, freezes, cached TCEs and event
 * counts must agree.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EventLog } from '../../src/base/events.js';
import { PhysMemory } from '../../src/hw/memory.js';
import { Phb } from '../../src/hw/phb.js';

const PE = 1;
const RID = 0x0108;
const TOP = 0x10_0000;
const LEAVES = 0x20_0000;
const SZ_64K = 0x1_0000;
/** RAM of the test PHBs: 64 MiB, so TCEs can point past it. */
const RAM = 2 ** 26;

function phb(listen: boolean) {
  const log = new EventLog();
  if (listen) log.subscribe(() => {});
  const mem = new PhysMemory({ ramBytes: RAM, pageShift: 16, maxPageOrder: 8 }, log);
  const p = new Phb(0, 'PHB4', mem, log);
  p.rtt.set(RID, PE);
  p.setTve(PE * 2, XLATE);
  mem.writeU64BE(TOP, LEAVES + 3);
  mem.writeU64BE(TOP + 8, LEAVES + SZ_64K + 3);
  // Pages 0..4 start readable and writable (at pages 8..12).
  for (let i = 0; i < 5; i++) mem.writeU64BE(LEAVES + i * 8, (8 + i) * 4096 + 3);
  return { log, mem, p };
}

/** TVE#0 of PE 1: 2 levels of 8192 entries of 4K IOMMU pages; leaves for pages 0..16383. */
const XLATE = { kind: 'xlate', tableAddr: TOP, levels: 2, levelBytes: SZ_64K, pageShift: 12 } as const;

type Op =
  | { kind: 'tce'; idx: number; page: number; perm: number }
  | { kind: 'dma'; rid: number; bus: number; len: number; write: boolean; fill: number; thaw: boolean }
  | { kind: 'kill' }
  | { kind: 'thaw' }
  | { kind: 'cache'; on: boolean }
  | { kind: 'bypass' }
  | { kind: 'xlate' };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('tce' as const),
      idx: fc.nat(3),
      page: fc.oneof(fc.nat(64), fc.constant(2 ** 14 - 1), fc.constant(2 ** 14)),
      perm: fc.nat(3),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('dma' as const),
      rid: fc.constantFrom(RID, RID, RID, RID, RID, 0x0200),
      // Pages 0..4 and the last of the two leaves' reach (faults past it), any offset.
      bus: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 5 * 4096 - 1 }) }, fc.integer({ min: 16383 * 4096, max: 16385 * 4096 })),
      // Thaw the PE first (a fault froze it).
      thaw: fc.boolean(),
      len: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 16 }) }, fc.constantFrom(0, 4096, 5000)),
      write: fc.boolean(),
      fill: fc.nat(255),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'kill' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'thaw' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cache' as const), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'bypass' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'xlate' as const }) },
);

test('the DMA hit path does what the whole path does', () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 10, maxLength: 80 }), (ops) => {
      const fast = phb(false);
      const slow = phb(true);
      for (const o of ops) {
        for (const m of [fast, slow]) {
          if (o.kind === 'tce') m.mem.writeU64BE(LEAVES + o.idx * 8, o.page * 4096 + o.perm);
          else if (o.kind === 'kill') m.p.killPe(PE);
          else if (o.kind === 'thaw' || (o.kind === 'dma' && o.thaw)) m.p.unfreeze(PE, true, true);
          else if (o.kind === 'cache') m.p.tceCacheEnabled = o.on;
          else if (o.kind === 'bypass') m.p.setTve(PE * 2, { kind: 'bypass', start: 0n, end: BigInt(RAM) });
          else if (o.kind === 'xlate') m.p.setTve(PE * 2, XLATE);
        }
        if (o.kind !== 'dma') continue;
        const bufs = [fast, slow].map(() => new Uint8Array(o.len).fill(o.fill));
        const r = [fast, slow].map((m, i) => m.p.transfer('dev', o.rid, o.bus, bufs[i]!, o.write));
        assert.equal(r[0], r[1], `DMA at 0x${o.bus.toString(16)}`);
        assert.deepEqual(bufs[0], bufs[1]);
        assert.deepEqual(fast.p.peState[PE], slow.p.peState[PE]);
        assert.equal(fast.p.cachedTces, slow.p.cachedTces);
        assert.deepEqual(fast.p.cachedEntries(PE * 2), slow.p.cachedEntries(PE * 2));
      }
      assert.deepEqual(fast.log.counts, slow.log.counts);
    }),
    { numRuns: 200 },
  );
});
