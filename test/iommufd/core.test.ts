/**
 * The generic IOMMUFD core, case by case as the kernel's iommufd selftest exercises it without a
 * mock domain (its expectations, re-expressed against tcelab's /dev/iommu), on a device-free
 * machine with x86's page sizes (4K pages, 2M huge pages) and on 64K radix PowerNV.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as I from '../../src/kernel/include/uapi/linux/iommufd.js';
import { getField, setField } from '../../src/kernel/include/uapi/linux/vfio.js';
import { Machine, type MachineOptions } from '../../src/machine/machine.js';

const BUF = 0x7f00_0000_0000n;
const MiB = 1n << 20n;

function setup(opts: Partial<MachineOptions> = {}) {
  const m = new Machine({ preset: 'powernv9', pageSize: '4k', iommufd: 'rfc-2026', hugePageShift: 21, ...opts });
  const p = m.sys.spawn('selftest');
  p.mm.mappings.push({ start: BUF, end: BUF + 64n * MiB, kind: 'anon' });
  const fd = m.sys.open(p.pid, '/dev/iommu').ret;
  const cmd = <S extends I.IommufdStruct>(s: S, v: Partial<Record<keyof (typeof I.iommufdStructs)[S]['fields'], bigint | number>>, size?: number) => {
    const def = I.iommufdStructs[s];
    const b = new Uint8Array(Math.max(def.size, size ?? 0));
    const f = def.fields as Record<string, { off: number; size: 1 | 2 | 4 | 8 }>;
    setField(b, f.size!, size ?? def.size);
    for (const [k, x] of Object.entries(v)) setField(b, f[k]!, x as bigint | number);
    const req = Number(Object.entries(I.IOMMUFD_IOCTLS).find(([, o]) => o.struct === s)![0]);
    const r = m.sys.ioctl(p.pid, fd, req, b);
    return { rc: r.ret < 0 ? -r.errno : r.ret, out: (k: keyof (typeof I.iommufdStructs)[S]['fields']) => getField(b, f[k as string]!) };
  };
  const ioas = () => Number(cmd('iommu_ioas_alloc', {}).out('out_ioas_id'));
  const map = (id: number, length: bigint, iova?: bigint, uptr = BUF) =>
    cmd('iommu_ioas_map', { ioas_id: id, flags: 6 | (iova === undefined ? 0 : 1), user_va: uptr, length, iova: iova ?? 0n });
  const unmap = (id: number, iova: bigint, length: bigint) => cmd('iommu_ioas_unmap', { ioas_id: id, iova, length });
  return { m, p, fd, cmd, ioas, map, unmap };
}

test('cmd_length: too small is EINVAL, a zero tail is accepted, a non-zero tail is E2BIG', () => {
  const { cmd } = setup();
  assert.equal(cmd('iommu_ioas_alloc', {}, 8).rc, -22);
  assert.equal(cmd('iommu_ioas_alloc', {}, 64).rc, 0);
  const { m, p, fd } = setup();
  const b = new Uint8Array(64);
  new DataView(b.buffer).setUint32(0, 64, true);
  b[63] = 1;
  assert.equal(m.sys.ioctl(p.pid, fd, I.IOMMU_IOAS_ALLOC, b).errno, 7);
});

test('cmd_fail: unknown ids are ENOENT, unknown flags EOPNOTSUPP', () => {
  const { cmd, ioas } = setup();
  assert.equal(cmd('iommu_destroy', { id: 0 }).rc, -2);
  assert.equal(cmd('iommu_ioas_alloc', { flags: 1 }).rc, -95);
  const id = ioas();
  assert.equal(cmd('iommu_ioas_map', { ioas_id: id, flags: 1 << 8, user_va: BUF, length: 4096n }).rc, -95);
  assert.equal(cmd('iommu_ioas_unmap', { ioas_id: id + 10, iova: 0n, length: 4096n }).rc, -2);
});

test('ids: the lowest free id is reused after DESTROY', () => {
  const { cmd, ioas } = setup();
  const a = ioas();
  const b = ioas();
  assert.deepEqual([a, b], [1, 2]);
  assert.equal(cmd('iommu_destroy', { id: a }).rc, 0);
  assert.equal(ioas(), 1);
});

test('area_auto_iova: kernel-chosen IOVAs never overlap, never use page 0, and are aligned', () => {
  const { ioas, map } = setup();
  const id = ioas();
  const got: [bigint, bigint][] = [];
  for (const len of [4096n, 8192n, 65536n, MiB, 2n * MiB, 3n * MiB]) {
    const r = map(id, len);
    assert.equal(r.rc, 0);
    const iova = r.out('iova');
    assert.ok(iova >= 4096n, 'page 0 is never handed out');
    for (const [s, l] of got) assert.ok(iova + len <= s || iova > l, 'no overlap');
    const align = len < 2n * MiB ? len : 2n * MiB;
    assert.equal(iova % (align & -align), 0n, `0x${iova.toString(16)} aligned for a ${len}-byte map`);
    got.push([iova, iova + len - 1n]);
  }
});

test('unmap_fully_contained_areas: whole areas only; a range over holes and areas unmaps the areas', () => {
  const { ioas, map, unmap } = setup();
  const id = ioas();
  for (const at of [0x10000n, 0x20000n, 0x30000n]) assert.equal(map(id, 0x10000n, at).rc, 0);
  assert.equal(unmap(id, 0x10000n, 0x1000n).rc, -2, 'part of an area: ENOENT');
  const r = unmap(id, 0x8000n, 0x40000n);
  assert.equal(r.rc, 0);
  assert.equal(r.out('length'), 0x30000n);
  assert.equal(unmap(id, 0n, (1n << 64n) - 1n).rc, 0, 'unmap all of an empty IOAS succeeds');
});

test('copy_area: COPY shares the source pages; longer than the source is ENOENT', () => {
  const { cmd, ioas, map } = setup();
  const a = ioas();
  const b = ioas();
  assert.equal(map(a, MiB, 0x100000n).rc, 0);
  const copy = (len: bigint, dst: bigint) =>
    cmd('iommu_ioas_copy', { flags: 7, dst_ioas_id: b, src_ioas_id: a, length: len, dst_iova: dst, src_iova: 0x100000n });
  assert.equal(copy(MiB, 0x200000n).rc, 0);
  assert.equal(copy(MiB, 0x200000n).rc, -17, 'destination busy');
  assert.equal(copy(2n * MiB, 0x800000n).rc, -2);
});

test('iova_ranges: EMSGSIZE with the needed count; ALLOW_IOVAS rejects overlaps', () => {
  const { p, cmd, ioas } = setup();
  const id = ioas();
  p.mm.user.place(0x7e00_0000_0000n, new Uint8Array(64));
  const r = cmd('iommu_ioas_iova_ranges', { ioas_id: id, num_iovas: 0, allowed_iovas: 0x7e00_0000_0000n });
  assert.equal(r.rc, -90);
  assert.equal(r.out('num_iovas'), 1n);
  const arr = new Uint8Array(32);
  const dv = new DataView(arr.buffer);
  dv.setBigUint64(0, 0x1000n, true);
  dv.setBigUint64(8, 0x2fffn, true);
  dv.setBigUint64(16, 0x2000n, true);
  dv.setBigUint64(24, 0x3fffn, true);
  p.mm.user.place(0x7e00_0000_0000n, arr);
  assert.equal(cmd('iommu_ioas_allow_iovas', { ioas_id: id, num_iovas: 2, allowed_iovas: 0x7e00_0000_0000n }).rc, -22);
});

test('global_options: RLIMIT_MODE can only change while the context is empty, and only by root', () => {
  const { m, p, cmd, ioas } = setup();
  assert.equal(cmd('iommu_option', { option_id: 0, op: 0, val64: 1n }).rc, 0);
  ioas();
  assert.equal(cmd('iommu_option', { option_id: 0, op: 0, val64: 0n }).rc, -16);
  m.sys.setuid(p.pid, 65534);
  assert.equal(cmd('iommu_option', { option_id: 0, op: 0, val64: 0n }).rc, -1);
});

test('HPAGE_SHIFT 0 (radix PowerNV): kernel-chosen IOVAs lose their alignment; the fix aligns them as under hash', () => {
  const { ioas, map } = setup({ pageSize: '64k', hugePageShift: 0 });
  const id = ioas();
  assert.equal(map(id, 0x1000n).out('iova'), 0x10000n, 'page 0 (64K) is skipped');
  assert.equal(map(id, 0x2000n).out('iova'), 0x11000n, 'no alignment beyond 1 byte');
  const fixed = setup({ pageSize: '64k', hugePageShift: 0, quirks: { 'iova-alignment-hpage-zero': false } });
  const id2 = fixed.ioas();
  fixed.map(id2, 0x1000n);
  assert.equal(fixed.map(id2, 0x2000n).out('iova'), 0x12000n, 'fixed: 8K-aligned, as the hash MMU (16M huge pages) gives');
});
