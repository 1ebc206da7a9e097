/**
 * PHB3 (POWER8) kills TCEs one register write per page, from the first page's kill value to the
 * last's. A v2 MAP_DMA that fails on its first page at bus address 0 (a 64K IOMMU page from 4K
 * kernel pages) kills no pages at index 0: the last page is index -1, the loop never ends, and
 * the watchdog reports a soft lockup (recorded on powernv8 with the 4K kernel: the program's next
 * record never came). PHB4 kills through OPAL and returns.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compareRecord } from '../../src/conformance/compare.js';
import { parseRecords, splitBoots } from '../../src/conformance/records.js';
import { OracleReplay } from '../../src/conformance/replay.js';
import { phb3KillWrites } from '../../src/kernel/powernv/pci-ioda.js';
import * as V from '../../src/kernel/include/uapi/linux/vfio.js';
import { Machine, type MachineOptions } from '../../src/machine/machine.js';
import { openV2Container } from '../vfio/v2-container.js';

const MEM = 0x10000000n;

function setup(opts: MachineOptions) {
  const m = new Machine(opts);
  for (const d of m.devices) m.bindVfioPci(d.name);
  const p = m.sys.spawn('vfio_spapr_oracle');
  p.mm.mappings.push({ start: MEM, end: MEM + 0x1000000n, kind: 'anon' });
  const c = openV2Container(m, p.pid);
  const reg = V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr: MEM, size: 0x100000n });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, reg).ret, 0);
  const remove = V.encode('vfio_iommu_spapr_tce_remove', { argsz: 16, start_addr: 0n });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_TCE_REMOVE, remove).ret, 0, 'the pending default window goes');
  const create = V.encode('vfio_iommu_spapr_tce_create', { argsz: 40, page_shift: 16, window_size: 1n << 30n, levels: 1 });
  assert.equal(m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_SPAPR_TCE_CREATE, create).ret, 0, '64K/1G takes slot 0');
  const map = (iova: bigint) =>
    m.sys.ioctl(p.pid, c, V.VFIO_IOMMU_MAP_DMA, V.encode('vfio_iommu_type1_dma_map', { argsz: 32, flags: 3, vaddr: MEM, iova, size: 0x10000n }));
  return { m, p, map };
}

test('phb3KillWrites: one write per page; none when the range is empty above 0; no end for no pages at 0', () => {
  assert.equal(phb3KillWrites(0xfd, 16, 0, 1), 1n);
  assert.equal(phb3KillWrites(0xfd, 12, 0x800, 0x10), 0x10n);
  assert.equal(phb3KillWrites(0xfd, 16, 3, 0), 0n, 'index 3, no pages: the end value lies below the start');
  assert.equal(phb3KillWrites(0xfd, 16, 0, 0), null);
  assert.equal(phb3KillWrites(0, 12, 0, 0), null);
});

test('powernv8, 4K pages: a failed MAP at bus address 0 of a 64K window loops in the PHB3 kill', () => {
  const { m, p, map } = setup({ preset: 'powernv8', pageSize: '4k' });
  const lockups: unknown[] = [];
  m.log.subscribe((e) => e.kind === 'soft-lockup' && lockups.push({ pid: e.pid, fn: e.fn }));
  const r = map(0n);
  assert.equal(r.ret, -1);
  assert.match(r.blocked!, /^pid \d+ \(vfio_spapr_oracle\), looping in pnv_pci_phb3_tce_invalidate \(soft lockup\)$/);
  assert.deepEqual(lockups, [{ pid: p.pid, fn: 'pnv_pci_phb3_tce_invalidate' }]);
  assert.equal(m.klog.lines.at(-1), `watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [vfio_spapr_orac:${p.pid}]`);
  assert.equal(m.sys.ioctl(p.pid, 3, V.VFIO_CHECK_EXTENSION, 7n).blocked, r.blocked, 'the task makes no more calls');
});

test('the same MAP fails with EINVAL where it kills something first, and on PHB4', () => {
  const p8 = setup({ preset: 'powernv8', pageSize: '4k' });
  assert.deepEqual(p8.map(0x10000n), { ret: -1, errno: 22 }, 'index 1: no pages kill nothing');
  const p9 = setup({ preset: 'powernv9', pageSize: '4k' });
  assert.deepEqual(p9.map(0n), { ret: -1, errno: 22 }, 'PHB4 kills through OPAL');
  const p8k64 = setup({ preset: 'powernv8', pageSize: '64k' });
  assert.deepEqual(p8k64.map(0n), { ret: 0, errno: 0 }, 'with 64K kernel pages the MAP succeeds');
});

/**
 * The powernv8 4K recording's first two boots stop where the program's next call (its source,
 * vfio_spapr_oracle.c) is a MAP at bus address 0 of a 64K slot-0 window; the watchdog then
 * reported a soft lockup on the console. Their last records, and the call that never returned.
 */
const STOPPED: [string, string, Record<string, unknown>][] = [
  ['third create', 'map at start of slot-0 window', { iova: '0x0', vaddr: 'buf+0x0', size: '0x10000', flags: 3, argsz: 32 }],
  ['third create', 'map in first', { iova: '0x0', vaddr: 'buf+0x0', size: '0x100000', flags: 3, argsz: 32 }],
];

test('the powernv8 4K recording stops where its next call, a MAP at bus address 0, loops in the kill', () => {
  const records = parseRecords(readFileSync(join(import.meta.dirname, '../../../fixtures/oracle/p8-4k.jsonl'), 'utf8'), 'p8-4k.jsonl');
  const boots = splitBoots(records);
  STOPPED.forEach(([lastCase, nextCase, args], i) => {
    const boot = boots[i]!;
    const replay = new OracleReplay(boot);
    for (const r of boot) assert.deepEqual(compareRecord(r, replay.run(r)), [], `boot ${i} ${r.scn} #${r.seq} ${r.case}`);
    const last = boot.at(-1)!;
    assert.equal(last.case, lastCase, `boot ${i} ends at its ${lastCase}`);
    const answer = replay.run({ ...last, seq: last.seq + 1, op: 'VFIO_IOMMU_MAP_DMA', case: nextCase, args, dmesg: [] });
    assert.equal(answer.ret, -1);
    assert.match(answer.dmesg.at(-1)!, /^watchdog: BUG: soft lockup - CPU#0 stuck for 22s! \[vfio_spapr_orac:\d+\]$/);
    assert.ok([...replay.machine.sys.processes.values()].some((p) => p.stuck?.includes('pnv_pci_phb3_tce_invalidate')));
  });
  assert.equal(boots.length, 3, 'the third boot skips both scenarios and ends normally');
});
