import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compareRecord, normalizeDmesg } from '../../src/conformance/compare.js';
import { formatMismatch, replayFile } from '../../src/conformance/run.js';

const ROOT = join(import.meta.dirname, '../../../fixtures');

/** Every recording of the real kernel, PowerNV (oracle/) and pSeries (oracle-pseries/). */
for (const dir of ['oracle', 'oracle-pseries']) {
  for (const f of readdirSync(join(ROOT, dir)).filter((x) => x.endsWith('.jsonl'))) {
    test(`real-kernel recording ${dir}/${f} replays with 0 mismatched`, () => {
      const r = replayFile(join(ROOT, dir, f));
      assert.ok(r.records > 20, 'the recording has records');
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
