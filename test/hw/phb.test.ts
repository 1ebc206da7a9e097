/** PHB + OPAL: TVE programming, the hardware TCE walk, the TCE cache and its kills, EEH freeze. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EventLog } from '../../src/base/events.js';
import {
  Opal,
  OPAL_EEH_ACTION_CLEAR_FREEZE_ALL,
  OPAL_EEH_STOPPED_MMIO_DMA_FREEZE,
  OPAL_EEH_STOPPED_NOT_FROZEN,
  OPAL_PARAMETER,
  OPAL_PCI_TCE_KILL_PAGES,
  OPAL_PCI_TCE_KILL_PE,
  OPAL_SUCCESS,
  OPAL_UNSUPPORTED,
} from '../../src/firmware/opal.js';
import { PhysMemory } from '../../src/hw/memory.js';
import { encodeTve, Phb, type PhbModel } from '../../src/hw/phb.js';

const PE = 1;
const RID = 0x0108;
/** Top level of the hand-built table and the base of its leaf levels (64 KiB each). */
const TOP = 0x10_0000;
const LEAVES = 0x20_0000;
const SZ_64K = 0x1_0000;

function machine(model: PhbModel = 'PHB4', ramBytes = 2 ** 31) {
  const log = new EventLog();
  const mem = new PhysMemory({ ramBytes, pageShift: 16, maxPageOrder: 8 }, log);
  const phb = new Phb(0, model, mem, log);
  const opal = new Opal([phb], log);
  phb.rtt.set(RID, PE);
  return { log, mem, phb, opal };
}

/** TVE#0 of PE 1: 2 levels of 8192 entries, 4 KiB IOMMU pages (a 2^38-byte window). */
function twoLevelWindow(m: ReturnType<typeof machine>): void {
  assert.equal(m.opal.mapPeDmaWindow(0, PE, PE * 2, 2, TOP, SZ_64K, 0x1000), OPAL_SUCCESS);
}

/** Install the leaf TCE for IOMMU page `idx` of the 2-level table, creating its leaf level. */
function putTce(mem: PhysMemory, idx: number, tce: number): void {
  const l1 = Math.floor(idx / 8192);
  const leaf = LEAVES + l1 * SZ_64K;
  mem.writeU64BE(TOP + l1 * 8, leaf + 3);
  mem.writeU64BE(leaf + (idx % 8192) * 8, tce);
}

// ---- OPAL map_pe_dma_window / map_pe_dma_window_real ----

test('map_pe_dma_window rejects bad arguments with OPAL_PARAMETER and leaves the TVE alone', () => {
  const m = machine('PHB4');
  twoLevelWindow(m);
  const before = m.phb.getTve(2);
  const bad: [string, number, number, number, number, number][] = [
    // [why, pe, windowId, levels, tableSize, pageSize]
    ['levels 0', PE, 2, 0, SZ_64K, 0x1000],
    ['levels 6', PE, 2, 6, SZ_64K, 0x1000],
    ['size not a power of 2', PE, 2, 2, 0x1800, 0x1000],
    ['size below 4K', PE, 2, 1, 0x800, 0x1000],
    ['page size 128K not in PHB4 list', PE, 2, 2, SZ_64K, 0x2_0000],
    ['page size 16M not in PHB4 list', PE, 2, 2, SZ_64K, 0x100_0000],
    ['window 4 does not belong to PE 1', PE, 4, 2, SZ_64K, 0x1000],
    ['pe beyond num_pes', 512, 1024, 2, SZ_64K, 0x1000],
  ];
  for (const [why, pe, win, levels, size, page] of bad) {
    assert.equal(m.opal.mapPeDmaWindow(0, pe, win, levels, TOP, size, page), OPAL_PARAMETER, why);
    assert.deepEqual(m.phb.getTve(2), before, `${why}: TVE changed`);
  }
});

test('map_pe_dma_window accepts a page size only the PHB generation supports (16M on PHB3)', () => {
  assert.equal(machine('PHB3').opal.mapPeDmaWindow(0, PE, 2, 1, TOP, SZ_64K, 0x100_0000), OPAL_SUCCESS);
  assert.equal(machine('PHB4').opal.mapPeDmaWindow(0, PE, 2, 1, TOP, SZ_64K, 0x100_0000), OPAL_PARAMETER);
});

test('map_pe_dma_window with size 0 disables the TVE', () => {
  const m = machine();
  twoLevelWindow(m);
  assert.notEqual(m.phb.getTve(2), null);
  assert.equal(m.opal.mapPeDmaWindow(0, PE, 2, 0, 0, 0, 0), OPAL_SUCCESS);
  assert.equal(m.phb.getTve(2), null);
});

test('T24: skiboot TVE encoding of a 2-level 64K/64K window', () => {
  const m = machine('PHB4');
  assert.equal(m.opal.mapPeDmaWindow(0, 1, 3, 2, 0x20_1234_0000, 0x10000, 0x10000), OPAL_SUCCESS);
  assert.equal(encodeTve(m.phb.getTve(3)), 0x0000_0201_2340_2505n);
});

test('map_pe_dma_window_real: bit 59 must match window_id & 1, start and size 16 MiB aligned', () => {
  const m = machine('PHB4');
  // T29
  assert.equal(m.opal.mapPeDmaWindowReal(0, 1, 2, 1n << 59n, 1n << 40n), OPAL_PARAMETER);
  assert.equal(m.opal.mapPeDmaWindowReal(0, 1, 3, 0n, 1n << 40n), OPAL_PARAMETER);
  assert.equal(m.opal.mapPeDmaWindowReal(0, 1, 2, 0x100_0000n, 0x80_0000n), OPAL_PARAMETER);
  assert.equal(m.opal.mapPeDmaWindowReal(0, 1, 2, 0x80_0000n, 0x100_0000n), OPAL_PARAMETER);
  assert.equal(m.phb.getTve(2), null);
  assert.equal(m.phb.getTve(3), null);
  // T28
  assert.equal(m.opal.mapPeDmaWindowReal(0, 1, 3, 1n << 59n, 1n << 40n), OPAL_SUCCESS);
  assert.deepEqual(m.phb.getTve(3), { kind: 'bypass', start: 0n, end: 1n << 40n });
  assert.equal(m.phb.translate(1, (1n << 59n) | 0x1234_5678n, true).pa, 0x1234_5678);
  assert.equal(m.opal.mapPeDmaWindowReal(0, 1, 3, 0n, 0n), OPAL_SUCCESS);
  assert.equal(m.phb.getTve(3), null);
});

// ---- the hardware walk ----

test('2-level walk: any IOMMU page index reaches its own leaf TCE', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 26 - 1 }), fc.integer({ min: 0, max: 0xfff }), (idx, off) => {
      const m = machine();
      twoLevelWindow(m);
      const target = 0x4000_0000 + (idx % 4096) * 0x1000;
      putTce(m.mem, idx, target + 3);
      const t = m.phb.translate(PE, (BigInt(idx) << 12n) + BigInt(off), false);
      assert.equal(t.reason, undefined);
      assert.equal(t.pa, target + off);
    }),
    { numRuns: 50 },
  );
});

test('2-level walk: an absent middle level faults "invalid indirect TCE"', () => {
  const m = machine();
  twoLevelWindow(m);
  putTce(m.mem, 5, 0x4000_0003);
  assert.equal(m.phb.translate(PE, 8192n << 12n, false).reason, 'invalid indirect TCE');
  // An indirect entry with an address but no permission bits is just as invalid (T27).
  m.mem.writeU64BE(TOP, LEAVES);
  assert.equal(m.phb.translate(PE, 5n << 12n, false).reason, 'invalid indirect TCE');
});

test('leaf permissions: read-only, write-only and empty TCEs', () => {
  const m = machine();
  m.phb.tceCacheEnabled = false;
  twoLevelWindow(m);
  putTce(m.mem, 1, 0x4000_0000 + 1); // TCE_PCI_READ
  putTce(m.mem, 2, 0x4000_0000 + 2); // TCE_PCI_WRITE
  assert.equal(m.phb.translate(PE, 0x1000n, false).pa, 0x4000_0000);
  assert.match(m.phb.translate(PE, 0x1000n, true).reason!, /TCE access fault \(write to a read-only TCE\)/);
  assert.equal(m.phb.translate(PE, 0x2000n, true).pa, 0x4000_0000);
  assert.match(m.phb.translate(PE, 0x2000n, false).reason!, /TCE access fault \(read to a write-only TCE\)/);
  assert.match(m.phb.translate(PE, 0x3000n, false).reason!, /TCE page fault/);
});

test('T26/T27: reference 2-level walk of the T24 TVE on PHB4', () => {
  const m = machine('PHB4', 2 ** 38);
  m.phb.tceCacheEnabled = false;
  m.phb.rtt.set(RID, 1);
  assert.equal(m.opal.mapPeDmaWindow(0, 1, 3, 2, 0x20_1234_0000, 0x10000, 0x10000), OPAL_SUCCESS);
  m.mem.writeU64BE(0x20_1234_0488, 0x30_0000_0003);
  m.mem.writeU64BE(0x30_0000_a2b0, 0xabcd_0003);
  m.mem.write(0xabcd_7890, Uint8Array.from([0xde, 0xad, 0xbe, 0xef]));
  const bus = 0x0800_0012_3456_7890n;
  assert.equal(m.phb.translate(1, bus, true).pa, 0xabcd_7890);
  const r = m.phb.dma('dev', RID, bus, 4, false);
  assert.equal(r.ok, true);
  assert.deepEqual([...r.data!], [0xde, 0xad, 0xbe, 0xef]);
  m.mem.writeU64BE(0x30_0000_a2b0, 0xabcd_0001);
  assert.match(m.phb.translate(1, bus, true).reason!, /TCE access fault/);
  m.mem.writeU64BE(0x20_1234_0488, 0x30_0000_0000);
  assert.equal(m.phb.translate(1, bus, false).reason, 'invalid indirect TCE');
});

// ---- the TCE cache ----

/** A machine whose page 7 was translated once (cached → 0x4000_0000), then retargeted in memory. */
function staleMachine(model: PhbModel) {
  const m = machine(model);
  twoLevelWindow(m);
  putTce(m.mem, 7, 0x4000_0003);
  putTce(m.mem, 9, 0x4100_0003);
  assert.equal(m.phb.translate(PE, 0x7000n, false).pa, 0x4000_0000);
  assert.equal(m.phb.translate(PE, 0x9000n, false).pa, 0x4100_0000);
  putTce(m.mem, 7, 0x5000_0003);
  return m;
}

test('TCE cache: a TCE changed in memory is not seen until a kill; the DMA is flagged stale', () => {
  const m = staleMachine('PHB4');
  const t = m.phb.translate(PE, 0x7000n, false);
  assert.equal(t.pa, 0x4000_0000);
  assert.equal(t.stale, true);
  const events: boolean[] = [];
  m.log.subscribe((e) => {
    if (e.kind === 'dma') events.push((e as { stale: boolean }).stale);
  });
  assert.equal(m.phb.dma('dev', RID, 0x7000n, 8, false).ok, true);
  assert.deepEqual(events, [true]);
});

test('OPAL pci_tce_kill PE clears the cache of that PE', () => {
  const m = staleMachine('PHB4');
  assert.equal(m.opal.pciTceKill(0, OPAL_PCI_TCE_KILL_PE, PE, 0, 0n, 0), OPAL_SUCCESS);
  const t = m.phb.translate(PE, 0x7000n, false);
  assert.equal(t.pa, 0x5000_0000);
  assert.equal(t.stale, false);
});

test('OPAL pci_tce_kill PAGES on PHB4 becomes a PE kill (other pages are dropped too)', () => {
  const m = staleMachine('PHB4');
  assert.equal(m.phb.cachedTces, 2);
  // Kill only page 9: the PE-wide kill also refreshes page 7.
  assert.equal(m.opal.pciTceKill(0, OPAL_PCI_TCE_KILL_PAGES, PE, 0x1000, 0x9000n, 1), OPAL_SUCCESS);
  assert.equal(m.phb.cachedTces, 0);
  assert.equal(m.phb.translate(PE, 0x7000n, false).pa, 0x5000_0000);
});

test('OPAL pci_tce_kill is unsupported on PHB3 and leaves the cache stale', () => {
  const m = staleMachine('PHB3');
  assert.equal(m.opal.pciTceKill(0, OPAL_PCI_TCE_KILL_PE, PE, 0, 0n, 0), OPAL_UNSUPPORTED);
  assert.equal(m.phb.translate(PE, 0x7000n, false).stale, true);
});

test('Phb.killPages drops exactly the named pages (PHB3 kill register)', () => {
  const m = staleMachine('PHB3');
  m.phb.killPages(PE, 12, 0x7000n, 1);
  assert.equal(m.phb.cachedTces, 1);
  const t = m.phb.translate(PE, 0x7000n, false);
  assert.equal(t.pa, 0x5000_0000);
  assert.equal(t.stale, false);
});

test('Phb.killPages clears a cached TCE of TVE#1 (bus bit 59 set)', () => {
  const m = machine('PHB3');
  assert.equal(m.opal.mapPeDmaWindow(0, PE, PE * 2 + 1, 2, TOP, SZ_64K, 0x1000), OPAL_SUCCESS);
  putTce(m.mem, 7, 0x4000_0003);
  const bus = (1n << 59n) | 0x7000n;
  assert.equal(m.phb.translate(PE, bus, false).pa, 0x4000_0000);
  putTce(m.mem, 7, 0x5000_0003);
  m.phb.killPages(PE, 12, bus, 1);
  assert.equal(m.phb.translate(PE, bus, false).pa, 0x5000_0000);
});

// ---- EEH ----

test('EEH: DMA through an invalid TVE freezes the PE until eeh_freeze_clear(ALL)', () => {
  const m = machine();
  assert.deepEqual(m.opal.eehFreezeStatus(0, PE), { rc: OPAL_SUCCESS, state: OPAL_EEH_STOPPED_NOT_FROZEN });
  const bad = m.phb.dma('dev', RID, 0x7000n, 8, false);
  assert.equal(bad.ok, false);
  assert.match(bad.reason!, /invalid TVE#0/);
  assert.deepEqual(m.opal.eehFreezeStatus(0, PE), { rc: OPAL_SUCCESS, state: OPAL_EEH_STOPPED_MMIO_DMA_FREEZE });
  assert.equal(OPAL_EEH_STOPPED_MMIO_DMA_FREEZE, 4);

  // A valid window does not help while the PE is frozen.
  twoLevelWindow(m);
  putTce(m.mem, 7, 0x4000_0003);
  m.mem.write(0x4000_0000, Uint8Array.from([1, 2, 3, 4]));
  const frozen = m.phb.dma('dev', RID, 0x7000n, 4, false);
  assert.equal(frozen.ok, false);
  assert.match(frozen.reason!, /frozen/);

  assert.equal(m.opal.eehFreezeClear(0, PE, OPAL_EEH_ACTION_CLEAR_FREEZE_ALL), OPAL_SUCCESS);
  assert.equal(m.opal.eehFreezeStatus(0, PE).state, OPAL_EEH_STOPPED_NOT_FROZEN);
  const ok = m.phb.dma('dev', RID, 0x7000n, 4, false);
  assert.equal(ok.ok, true);
  assert.deepEqual([...ok.data!], [1, 2, 3, 4]);
});

test('EEH: clearing only the MMIO freeze leaves DMA frozen', () => {
  const m = machine();
  m.phb.dma('dev', RID, 0x7000n, 8, false);
  assert.equal(m.opal.eehFreezeClear(0, PE, 1), OPAL_SUCCESS);
  assert.equal(m.opal.eehFreezeStatus(0, PE).state, OPAL_EEH_STOPPED_MMIO_DMA_FREEZE);
  assert.equal(m.phb.peState[PE]!.dmaFrozen, true);
});
