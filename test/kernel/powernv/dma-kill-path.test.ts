/**
 * The DMA API's TCE build/free and kill path (pnv_tce_build/free through the page's DataView,
 * the OPAL or register kill, events counted without a listener) against the same work with a
 * listener attached: two identical machines make the same random dma_map_page/dma_unmap_page
 * calls and kills, one of them listened to. Bus addresses, table bytes, the PHBs' kill counts
 * and event counts must agree, and the listener must see as many events as were counted. The
 * table must hold what the maps put there: each mapped page's address with its permission, zero
 * once unmapped (a TCE written through the leaf fast path or entry range by entry range alike).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, type DmaDirection } from '../../../src/hw/tce.js';
import { dmaMapPage, dmaUnmapPage } from '../../../src/kernel/dma-api.js';
import { Machine } from '../../../src/machine/machine.js';
import type { PresetName } from '../../../src/machine/presets.js';

const K64 = 65536;
const DIRS: DmaDirection[] = [DMA_BIDIRECTIONAL, DMA_TO_DEVICE, DMA_FROM_DEVICE];

type Op =
  | { kind: 'map'; page: number; offset: number; len: number; dir: number; cpu: number }
  | { kind: 'unmap'; which: number }
  | { kind: 'kill'; index: number; npages: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('map' as const),
      page: fc.nat(4095),
      offset: fc.oneof(fc.constant(0), fc.nat(K64 - 1)),
      // Up to 40 pages: small pools and the large pool, runs that cross a leaf of 8192 entries.
      len: fc.integer({ min: 1, max: 40 * K64 }),
      dir: fc.nat(2),
      cpu: fc.nat(7),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('unmap' as const), which: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('kill' as const), index: fc.integer({ min: 0, max: 40000 }), npages: fc.integer({ min: 1, max: 64 }) }),
  },
);

function machine(preset: PresetName, listen: boolean) {
  const m = new Machine({ preset, pageSize: '64k' });
  // The counts when the listener came, and what it heard since, by "layer.kind".
  const before = m.log.counts;
  const heard = new Map<string, number>();
  if (listen) m.log.subscribe((e) => heard.set(`${e.layer}.${e.kind}`, (heard.get(`${e.layer}.${e.kind}`) ?? 0) + 1), { verbose: true });
  return { m, dev: m.devices[0]!, before, heard };
}

type Run = ReturnType<typeof machine>;

/** TCE permission bits by direction index (pnv_tce_build adds READ to WRITE). */
const PERMS = [3, 1, 3];

/** Runs the ops; `expect` gets the TCE each entry (relative to it_offset) should hold. */
function apply(r: Run, ops: Op[], expect?: Map<number, number>): (bigint | null)[] {
  const out: (bigint | null)[] = [];
  const live: { dma: bigint; len: number }[] = [];
  const tbl = r.dev.table!;
  const pages = (dma: bigint, len: number) => Math.ceil((Number(dma % BigInt(K64)) + len) / K64);
  for (const o of ops) {
    if (o.kind === 'map') {
      const dma = dmaMapPage(r.dev, o.page * K64 + o.offset, o.len, DIRS[o.dir]!, 16, o.cpu, r.m.log);
      out.push(dma);
      if (dma === null) continue;
      live.push({ dma, len: o.len });
      const first = Number(dma / BigInt(K64)) - tbl.itOffset;
      for (let k = 0; k < pages(dma, o.len); k++) expect?.set(first + k, (o.page + k) * K64 + PERMS[o.dir]!);
    } else if (o.kind === 'unmap') {
      if (live.length === 0) continue;
      const [m] = live.splice(o.which % live.length, 1);
      dmaUnmapPage(r.dev, m!.dma, m!.len, DMA_BIDIRECTIONAL, r.m.log);
      const first = Number(m!.dma / BigInt(K64)) - tbl.itOffset;
      for (let k = 0; k < pages(m!.dma, m!.len); k++) expect?.delete(first + k);
    } else tbl.ops.tceKill!(tbl, tbl.itOffset + o.index, o.npages);
  }
  return out;
}

function tableBytes(r: Run): number[] {
  const tbl = r.dev.table!;
  const tces: number[] = [];
  for (let i = 0; i < tbl.itSize; i++) tces.push(tbl.ops.get(tbl, tbl.itOffset + i));
  return tces;
}

for (const preset of ['powernv9', 'powernv8'] as const) {
  test(`${preset}: DMA API map/unmap and kills agree with and without a listener`, () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 80 }), (ops) => {
        const quiet = machine(preset, false);
        const heard = machine(preset, true);
        const expect = new Map<number, number>();
        assert.deepEqual(apply(quiet, ops, expect), apply(heard, ops));
        const tces = tableBytes(quiet);
        assert.deepEqual(tces, tableBytes(heard));
        for (let i = 0; i < tces.length; i++) assert.equal(tces[i], expect.get(i) ?? 0, `entry ${i}`);
        assert.deepEqual(
          quiet.m.phbs.map((p) => p.kills),
          heard.m.phbs.map((p) => p.kills),
        );
        const counts = heard.m.log.counts;
        assert.deepEqual([...quiet.m.log.counts].sort(), [...counts].sort());
        // The listener heard every event counted since it came, kind by kind.
        const since = new Map<string, number>();
        for (const [k, n] of counts) if (n !== (heard.before.get(k) ?? 0)) since.set(k, n - (heard.before.get(k) ?? 0));
        assert.deepEqual([...heard.heard].sort(), [...since].sort());
      }),
      { numRuns: 15 },
    );
  });
}
