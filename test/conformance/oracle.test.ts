import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compareRecord, normalizeDmesg } from '../../src/conformance/compare.js';
import { formatMismatch, replayFile } from '../../src/conformance/run.js';

const ROOT = join(import.meta.dirname, '../../../fixtures');

/**
 * Every recording of the real kernel: PowerNV (oracle/), pSeries (oracle-pseries/), the PPC64
 * IOMMUFD RFC kernel (oracle-rfc/), and x86 IOMMUFD (oracle-iommufd/), whose device-free records
 * replay on the generic core with x86's page sizes (its device records need an x86 machine).
 */
for (const dir of ['oracle', 'oracle-pseries', 'oracle-rfc', 'oracle-iommufd']) {
  for (const f of readdirSync(join(ROOT, dir)).filter((x) => x.endsWith('.jsonl'))) {
    test(`real-kernel recording ${dir}/${f} replays with 0 mismatched`, () => {
      const r = replayFile(join(ROOT, dir, f));
      assert.ok(r.records > 20, 'the recording has records');
      if (dir === 'oracle-iommufd') assert.ok(r.skipped > 0 && /not modelled/.test(r.skipReason ?? ''), 'x86 device records are skipped, and say why');
      else assert.equal(r.skipped, 0);
      assert.deepEqual(
        r.mismatches.map((m) => formatMismatch(f, m)),
        [],
      );
      assert.equal(r.matched, r.records);
    });
  }
}

test('a WARNING splat compares as one line naming file, line and function', () => {
  const lines = [
    '------------[ cut here ]------------',
    'WARNING: CPU: 0 PID: 255 at mm/vmalloc.c:3790 __vmalloc_node_range_noprof+0x950/0xa04',
    'Modules linked in: vfio',
    '---[ end trace 0000000000000000 ]---',
    'after',
  ];
  assert.deepEqual(normalizeDmesg(lines, 'x'), ['WARNING: at mm/vmalloc.c:3790 __vmalloc_node_range_noprof', 'after']);
});

test('a warn_alloc report compares as its message, its dump to the end of the call or the next splat skipped', () => {
  const kernel = [
    'spapr_tce_create_table: Calling query /pci@800000020000000',
    'vfio_spapr_orac: vmalloc error: size 2147483648, exceeds total pages, mode:0xdc0(GFP_KERNEL|__GFP_ZERO), nodemask=(null),cpuset=/,mems_allowed=0',
    'CPU: 0 UID: 0 PID: 241 Comm: vfio_spapr_orac Not tainted 6.12.95+deb12-powerpc64le #1  Debian 6.12.95-1~bpo12+1',
    'Call Trace:',
    '[c0000000047ef6a0] [c0000000010c3f34] dump_stack_lvl+0x88/0xc4 (unreliable)',
    'Mem-Info:',
    '32768 pages RAM',
    '------------[ cut here ]------------',
    'WARNING: CPU: 0 PID: 241 at mm/vmalloc.c:3790 __vmalloc_node_range_noprof+0x950/0xa04',
    '---[ end trace 0000000000000000 ]---',
  ];
  const model = [
    kernel[0]!,
    'other: vmalloc error: size 2147483648, exceeds total pages, mode:0xdc0(GFP_KERNEL|__GFP_ZERO), nodemask=(null),cpuset=/,mems_allowed=0',
    'CPU: 0 UID: 0 PID: 100 Comm: other',
  ];
  assert.deepEqual(normalizeDmesg(kernel, 'x'), [
    kernel[0],
    'warn_alloc: vmalloc error: size 2147483648, exceeds total pages',
    'WARNING: at mm/vmalloc.c:3790 __vmalloc_node_range_noprof',
  ]);
  assert.deepEqual(normalizeDmesg(model, 'x'), normalizeDmesg(kernel, 'x').slice(0, 2));
});

test('power-management lines are ignored only in bind_vfio_pci records', () => {
  const pm = ['vfio-pci 0000:01:00.0: Refused to change power state from D0 to D3hot'];
  assert.deepEqual(normalizeDmesg(pm, 'bind_vfio_pci'), []);
  assert.deepEqual(normalizeDmesg(pm, 'close'), pm);
});

test('a differing answer is reported field by field', () => {
  const rec = {
    qemu_machine: 'powernv9',
    kernel: 'k-64k',
    kernel_cmdline: '',
    seq: 7,
    scn: 's',
    op: 'VFIO_SET_IOMMU',
    case: 'c',
    args: {},
    ret: -1,
    errno: 'EINVAL',
    out: {},
    vmlck_kb: 0,
    dmesg: [],
  };
  const ms = compareRecord(rec, { ret: 0, errno: null, out: {}, vmlck_kb: 64, dmesg: ['x'] });
  assert.deepEqual(
    ms.map((m) => m.field),
    ['ret', 'errno', 'vmlck_kb', 'dmesg[0]'],
  );
});
