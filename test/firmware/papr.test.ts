/**
 * The PAPR hypervisor: TCE hypercalls and RTAS dynamic DMA windows, with the golden vectors of
 * reference/qemu-papr.md §10.4 (T4–T19) and bad input that must change nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GiB } from '../../src/base/bits.js';
import { EventLog } from '../../src/base/events.js';
import { H_FUNCTION, H_PARAMETER, H_SUCCESS, PaprHypervisor, RTAS_HW_ERROR, RTAS_PARAM_ERROR, RTAS_SUCCESS } from '../../src/firmware/papr/hypervisor.js';
import { QEMU_7_2 } from '../../src/firmware/papr/profile.js';
import { PhysMemory } from '../../src/hw/memory.js';

const L0 = 0x80000000;
const L1 = 0x80000001;
const CFG = 0x800;
const HI = 0x8000000;
const LO = 0x20000000;

function hv(profile = QEMU_7_2) {
  const log = new EventLog();
  const mem = new PhysMemory({ ramBytes: 2 * GiB, pageShift: 16, maxPageOrder: 8 }, log);
  return { h: new PaprHypervisor(profile, mem, log, 2), mem };
}

/** Every table's window and entries, to show a failed call changed nothing. */
function snapshot(h: PaprHypervisor): string {
  return JSON.stringify(
    h.phbs.flatMap((p) => p.tables.map((t) => [t.liobn, t.nbTable, String(t.busOffset), t.pageShift, t.used, String(t.get(0)), String(t.get(5))])),
  );
}

test('T1/T19: boot state: the default window of 1 GiB in 4K pages; LIOBN and BUID per PHB', () => {
  const { h } = hv();
  const t0 = h.table(L0)!;
  assert.equal(t0.nbTable, 262144);
  assert.equal(t0.busOffset, 0n);
  assert.equal(h.table(L1)!.enabled, false);
  assert.equal(h.phbs[1]!.tables[0]!.liobn, 0x80000100);
  assert.equal(h.phbs[1]!.tables[1]!.liobn, 0x80000101);
  assert.equal(h.phbs[1]!.buid, 0x800000020000001n);
  assert.deepEqual(h.dtProperties(h.phbs[0]!).dmaWindow, { liobn: L0, offset: 0n, size: 1n << 30n });
  assert.deepEqual(h.dtProperties(h.phbs[0]!).ddwExtensions, [2, 0x2029, 1]);
});

test('T2/T3/T5: H_PUT_TCE masks the ioba to its page; H_GET_TCE returns the raw TCE', () => {
  const { h } = hv();
  assert.equal(h.hPutTce(L0, 0x5000n, 0x76543003n), H_SUCCESS);
  assert.deepEqual(h.hGetTce(L0, 0x5000n), { rc: H_SUCCESS, tce: 0x76543003n });
  assert.equal(h.hPutTce(L0, 0x5123n, 0x76543001n), H_SUCCESS);
  assert.deepEqual(h.hGetTce(L0, 0x5fffn), { rc: H_SUCCESS, tce: 0x76543001n });
});

test('T4/T6: a TCE past the window or a bad LIOBN is H_PARAMETER and changes nothing', () => {
  const { h } = hv();
  const before = snapshot(h);
  assert.equal(h.hPutTce(L0, 0x40000000n, 0x1003n), H_PARAMETER);
  assert.equal(h.hPutTce(0x12345678, 0n, 0x1003n), H_PARAMETER);
  assert.equal(h.hPutTce(L1, 0n, 0x1003n), H_PARAMETER, 'a disabled window');
  assert.equal(h.hGetTce(0x12345678, 0n).rc, H_PARAMETER);
  assert.equal(h.hGetTce(L0, 0x40000000n).rc, H_PARAMETER);
  assert.equal(snapshot(h), before);
});

test('T7: H_PUT_TCE_INDIRECT: more than 512, a misaligned list page or no pages is H_PARAMETER', () => {
  const { h } = hv();
  const before = snapshot(h);
  assert.equal(h.hPutTceIndirect(L0, 0n, 0x1000n, 513), H_PARAMETER);
  assert.equal(h.hPutTceIndirect(L0, 0n, 0x1008n, 1), H_PARAMETER);
  assert.equal(h.hPutTceIndirect(L0, 0n, 0x1000n, 0), H_PARAMETER);
  assert.equal(h.hPutTceIndirect(0x12345678, 0n, 0x1000n, 1), H_PARAMETER);
  assert.equal(h.hPutTceIndirect(L0, 0n, 1n << 40n, 1), H_PARAMETER, 'a list page outside guest RAM');
  assert.equal(snapshot(h), before);
});

test('T8: H_PUT_TCE_INDIRECT writes from the list page and stops at the end of the window', () => {
  const { h, mem } = hv();
  mem.writeU64BE(0x10000, 0xaaaa003);
  mem.writeU64BE(0x10008, 0xbbbb003);
  assert.equal(h.hPutTceIndirect(L0, 0x3ffff000n, 0x10000n, 2), H_PARAMETER);
  assert.equal(h.table(L0)!.get(262143), 0xaaaa003n);
  assert.equal(h.hPutTceIndirect(L0, 0x0n, 0x10000n, 2), H_SUCCESS);
  assert.equal(h.hGetTce(L0, 0x1000n).tce, 0xbbbb003n);
});

test('T9: H_STUFF_TCE: too many pages is H_PARAMETER; the end of the window stops it part-way', () => {
  const { h } = hv();
  h.hPutTce(L0, 0x3ffff000n, 0x1003n);
  assert.equal(h.hStuffTce(L0, 0n, 0n, 262145), H_PARAMETER);
  assert.equal(h.table(L0)!.get(262143), 0x1003n);
  assert.equal(h.hStuffTce(L0, 0x3ffff000n, 0n, 2), H_PARAMETER);
  assert.equal(h.table(L0)!.get(262143), 0n);
  assert.equal(h.hStuffTce(L0, 0n, 0x1003n, 4), H_SUCCESS);
  assert.equal(h.table(L0)!.used, 4);
});

test('T11: query on a fresh PHB: one window free, 2^37 TCEs, 4K|64K|16M|2M', () => {
  const { h } = hv();
  assert.deepEqual(h.queryPeDmaWindow(CFG, HI, LO), { status: 0, windowsAvailable: 1, largestBlock: 1n << 37n, pageMask: 0x107, migrationCapable: 0 });
});

test('T12/T13: create puts the DDW at 1<<59; a third window is HW_ERROR', () => {
  const { h } = hv();
  assert.deepEqual(h.createPeDmaWindow(CFG, HI, LO, 16, 36), { status: RTAS_SUCCESS, liobn: L1, addrHi: 0x08000000, addrLo: 0 });
  assert.equal(h.table(L1)!.nbTable, 1 << 20);
  assert.equal(h.queryPeDmaWindow(CFG, HI, LO).windowsAvailable, 0);
  assert.equal(h.createPeDmaWindow(CFG, HI, LO, 16, 36).status, RTAS_HW_ERROR);
});

test('T14/T15/T16: page shift outside the mask or a window smaller than a page is PARAM_ERROR; 2M accepted; u32 truncation', () => {
  const { h } = hv();
  const before = snapshot(h);
  assert.equal(h.createPeDmaWindow(CFG, HI, LO, 13, 30).status, RTAS_PARAM_ERROR);
  assert.equal(h.createPeDmaWindow(CFG, HI, LO, 12, 11).status, RTAS_PARAM_ERROR);
  assert.equal(h.createPeDmaWindow(CFG, HI, LO, 24, 0).status, RTAS_PARAM_ERROR, 'the boot-time window_shift 0');
  assert.equal(h.createPeDmaWindow(CFG, HI, LO, 12, 44).status, RTAS_HW_ERROR);
  assert.equal(snapshot(h), before);
  const r = h.createPeDmaWindow(CFG, HI, LO, 21, 40);
  assert.equal(r.status, RTAS_SUCCESS);
  assert.equal(h.table(L1)!.nbTable, 1 << 19);
});

test('bad BUID: every RTAS call is PARAM_ERROR and changes nothing', () => {
  const { h } = hv();
  const before = snapshot(h);
  assert.equal(h.queryPeDmaWindow(CFG, HI, 0x20000007).status, RTAS_PARAM_ERROR);
  assert.equal(h.createPeDmaWindow(CFG, HI, 0x20000007, 16, 32).status, RTAS_PARAM_ERROR);
  assert.equal(h.resetPeDmaWindow(CFG, 0, LO), RTAS_PARAM_ERROR);
  assert.equal(h.removePeDmaWindow(0x12345678), RTAS_PARAM_ERROR);
  assert.equal(snapshot(h), before);
});

test('T17: removing the default window first puts the next window at 0', () => {
  const { h } = hv();
  assert.equal(h.removePeDmaWindow(L0), RTAS_SUCCESS);
  assert.equal(h.removePeDmaWindow(L0), RTAS_PARAM_ERROR);
  assert.deepEqual(h.createPeDmaWindow(CFG, HI, LO, 16, 36), { status: RTAS_SUCCESS, liobn: L0, addrHi: 0, addrLo: 0 });
});

test('T18: reset leaves only the default window, zeroed', () => {
  const { h } = hv();
  h.hPutTce(L0, 0x5000n, 0x1003n);
  h.createPeDmaWindow(CFG, HI, LO, 16, 36);
  assert.equal(h.resetPeDmaWindow(CFG, HI, LO), RTAS_SUCCESS);
  assert.equal(h.table(L1)!.enabled, false);
  assert.equal(h.table(L0)!.nbTable, 262144);
  assert.equal(h.table(L0)!.used, 0);
});

test('without DDW the RTAS calls are PARAM_ERROR and the PHB has one window', () => {
  const { h } = hv({ ...QEMU_7_2, ddw: false });
  assert.equal(h.phbs[0]!.tables.length, 1);
  assert.equal(h.queryPeDmaWindow(CFG, HI, LO).status, RTAS_PARAM_ERROR);
  assert.equal(h.dtProperties(h.phbs[0]!).ddwApplicable, null);
});

test('a bad config address is not an error: QEMU finds the PE by its BUID alone', () => {
  const a = hv().h;
  const b = hv().h;
  assert.deepEqual(a.queryPeDmaWindow(0xdead00, HI, LO), b.queryPeDmaWindow(CFG, HI, LO));
  assert.deepEqual(a.createPeDmaWindow(0xdead00, HI, LO, 16, 36), b.createPeDmaWindow(CFG, HI, LO, 16, 36));
  assert.equal(a.resetPeDmaWindow(0xffffffff, HI, LO), RTAS_SUCCESS);
  assert.equal(a.table(L1)!.enabled, false);
});

test('hcalls on a disabled window, below a window or past it are H_PARAMETER and change nothing', () => {
  const { h } = hv();
  assert.equal(h.createPeDmaWindow(CFG, HI, LO, 16, 32).status, RTAS_SUCCESS);
  h.hPutTce(L1, 1n << 59n, 0x10003n);
  const before = snapshot(h);
  const L2 = 0x80000100;
  assert.equal(h.removePeDmaWindow(L2), RTAS_SUCCESS);
  const after = snapshot(h);
  assert.equal(h.hPutTceIndirect(L2, 0n, 0x1000n, 1), H_PARAMETER, 'INDIRECT on a disabled LIOBN');
  assert.equal(h.hStuffTce(L2, 0n, 0n, 1), H_PARAMETER, 'STUFF on a disabled LIOBN');
  assert.equal(h.hGetTce(L2, 0n).rc, H_PARAMETER, 'GET on a disabled LIOBN');
  assert.equal(h.hPutTce(L1, 0x10000n, 0x1003n), H_PARAMETER, 'an ioba below the window underflows past it');
  assert.equal(h.hPutTce(L1, (1n << 59n) + (1n << 32n), 0x1003n), H_PARAMETER, 'the first entry past the window');
  assert.equal(h.hStuffTce(L1, (1n << 59n) + (1n << 32n), 0n, 1), H_PARAMETER);
  assert.equal(snapshot(h), after);
  assert.notEqual(before, after);
  assert.equal(h.table(L1)!.get(0), 0x10003n);
});

test('RTAS remove of a disabled or unknown window, and every call without DDW, is PARAM_ERROR', () => {
  const { h } = hv();
  const before = snapshot(h);
  assert.equal(h.removePeDmaWindow(L1), RTAS_PARAM_ERROR, 'never enabled');
  assert.equal(h.removePeDmaWindow(0x80000002), RTAS_PARAM_ERROR, 'no such LIOBN');
  assert.equal(snapshot(h), before);
  const off = hv({ ...QEMU_7_2, ddw: false }).h;
  const offBefore = snapshot(off);
  assert.equal(off.createPeDmaWindow(CFG, HI, LO, 16, 32).status, RTAS_PARAM_ERROR);
  assert.equal(off.removePeDmaWindow(L0), RTAS_PARAM_ERROR);
  assert.equal(off.resetPeDmaWindow(CFG, HI, LO), RTAS_PARAM_ERROR);
  assert.equal(snapshot(off), offBefore);
});

test('without hcall-multi-tce, H_PUT_TCE_INDIRECT and H_STUFF_TCE are H_FUNCTION and change nothing', () => {
  const { h, mem } = hv({ ...QEMU_7_2, multiTce: false });
  assert.deepEqual(h.hypertasFunctions(), ['hcall-tce']);
  mem.writeU64BE(0x10000, 0xaaaa003);
  const before = snapshot(h);
  assert.equal(h.hPutTceIndirect(L0, 0n, 0x10000n, 1), H_FUNCTION);
  assert.equal(h.hStuffTce(L0, 0n, 0x1003n, 4), H_FUNCTION);
  assert.equal(snapshot(h), before);
  assert.equal(h.hPutTce(L0, 0n, 0x1003n), H_SUCCESS, 'H_PUT_TCE stays');
});
