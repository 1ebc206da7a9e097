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

/** Where the random geometries' levels live: 8 slots of 16K, each level in one of them. */
const REGION = 0x10_0000;
const REGION_SLOTS = 8;
const SLOT_BYTES = 0x4000;

/** A word of a random table: nothing, a pointer to a level slot (or outside RAM), or a leaf TCE. */
function tableWord(r: () => number): number {
  const kind = r() % 16;
  if (kind === 0) return 0;
  if (kind === 1) return 2 * RAM + (r() % 4);
  if (kind <= 10) return REGION + (r() % REGION_SLOTS) * SLOT_BYTES + (r() % 4);
  // Leaf pages half in RAM, half past it.
  return (r() % 2 ** 15) * 4096 + (r() % 4);
}

type GeoOp =
  | { kind: 'word'; at: number; seed: number }
  | { kind: 'dma'; page: number; off: number; len: number; write: boolean; fill: number; thaw: boolean }
  | { kind: 'kill' }
  | { kind: 'cache'; on: boolean };

const geoOp: fc.Arbitrary<GeoOp> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('word' as const), at: fc.nat((REGION_SLOTS * SLOT_BYTES) / 8 - 1), seed: fc.integer() }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('dma' as const),
      // Pages near 0 (the first slots of each level) or anywhere below 2^32.
      page: fc.oneof({ weight: 3, arbitrary: fc.nat(40) }, fc.nat(2 ** 20)),
      off: fc.nat(),
      len: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 16 }) }, fc.constantFrom(0, 4096, 5000)),
      write: fc.boolean(),
      fill: fc.nat(255),
      thaw: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'kill' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cache' as const), on: fc.boolean() }) },
);

test('the DMA hit path walks any geometry it takes as the whole path does', () => {
  fc.assert(
    fc.property(
      fc.record({
        // Up to 5 levels of 1 to 2048 entries; shifts of 32 or more (whose slot is 0) from 4 × 11 and 5 × 8 on.
        levels: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.constant(5)),
        bits: fc.oneof(fc.integer({ min: 0, max: 11 }), fc.constant(11)),
        pageShift: fc.constantFrom(12, 16, 21, 24, 30),
        seed: fc.integer(),
      }),
      fc.array(geoOp, { minLength: 10, maxLength: 60 }),
      (geo, ops) => {
        const tve = { kind: 'xlate', tableAddr: REGION, levels: geo.levels, levelBytes: 8 << geo.bits, pageShift: geo.pageShift } as const;
        const pair = [false, true].map((listen) => {
          const log = new EventLog();
          if (listen) log.subscribe(() => {});
          // 4K memory pages: a DMA within one IOMMU page may cross memory pages.
          const mem = new PhysMemory({ ramBytes: RAM, pageShift: 12, maxPageOrder: 8 }, log);
          const p = new Phb(0, 'PHB4', mem, log);
          p.rtt.set(RID, PE);
          p.setTve(PE * 2, tve);
          return { log, mem, p };
        });
        const words = (seed: number, from: number, n: number) => {
          let x = seed | 1;
          const r = () => {
            x ^= x << 13;
            x ^= x >>> 17;
            x ^= x << 5;
            return x >>> 0;
          };
          for (let i = from; i < from + n; i++) {
            const w = tableWord(r);
            for (const m of pair) m.mem.writeU64BE(REGION + i * 8, w);
          }
        };
        words(geo.seed, 0, (REGION_SLOTS * SLOT_BYTES) / 8);
        const pageSize = 2 ** geo.pageShift;
        for (const o of ops) {
          if (o.kind === 'word') words(o.seed, o.at, 1);
          else if (o.kind === 'kill') for (const m of pair) m.p.killPe(PE);
          else if (o.kind === 'cache') for (const m of pair) m.p.tceCacheEnabled = o.on;
          if (o.kind !== 'dma') continue;
          if (o.thaw) for (const m of pair) m.p.unfreeze(PE, true, true);
          const bus = (o.page * pageSize + (o.off % pageSize)) % 2 ** 32;
          const bufs = pair.map(() => new Uint8Array(o.len).fill(o.fill));
          const r = pair.map((m, i) => m.p.transfer('dev', RID, bus, bufs[i]!, o.write));
          assert.equal(r[0], r[1], `DMA at 0x${bus.toString(16)}`);
          assert.deepEqual(bufs[0], bufs[1]);
          assert.deepEqual(pair[0]!.p.peState[PE], pair[1]!.p.peState[PE]);
          assert.deepEqual(pair[0]!.p.cachedEntries(PE * 2), pair[1]!.p.cachedEntries(PE * 2));
        }
        assert.deepEqual(pair[0]!.log.counts, pair[1]!.log.counts);
      },
    ),
    { numRuns: 200 },
  );
});
