import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decode, decodeFieldTable, getField, hotDecoders, offsetofend, structs, u32Num, u64Num } from '../../src/kernel/include/uapi/linux/vfio.js';
import { readStructFromUser, structBytesFromUser } from '../../src/kernel/uaccess.js';

test('the MAP_DMA / UNMAP_DMA decoders give the field-table record for any image and prefix', () => {
  for (const s of Object.keys(hotDecoders) as (keyof typeof hotDecoders)[]) {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: structs[s].size + 8 }), fc.nat(), (bytes, cut) => {
        const len = cut % (bytes.length + 1);
        const want = decodeFieldTable(s, new DataView(bytes.buffer, bytes.byteOffset, len));
        const got = decode(s, bytes, len);
        assert.deepEqual(got, want);
        // Same keys in the same order: reports print the record as it comes.
        assert.deepEqual(Object.keys(got), Object.keys(want));
        assert.deepEqual(decode(s, bytes), decodeFieldTable(s, new DataView(bytes.buffer, bytes.byteOffset, bytes.length)));
      }),
      { numRuns: 300 },
    );
  }
});

test('u64 fields past 2^53 decode exactly whether or not their low bits fit a number', () => {
  const s = 'vfio_iommu_type1_dma_map';
  const off = structs[s].fields.iova.off;
  fc.assert(
    fc.property(fc.nat({ max: 0xffff_ffff }), fc.nat({ max: 0xffff_ffff }), fc.integer({ min: 0, max: 32 }), (hi, loBits, zeros) => {
      // Low bits cleared from the bottom: a page-aligned IOVA of a DDW at 2^59 is exact as a number.
      const lo = Math.floor(loBits / 2 ** zeros) * 2 ** zeros;
      const bytes = new Uint8Array(structs[s].size);
      const dv = new DataView(bytes.buffer);
      dv.setBigUint64(off, (BigInt(hi) << 32n) | BigInt(lo), true);
      assert.equal(decode(s, bytes).iova, (BigInt(hi) << 32n) | BigInt(lo));
      assert.deepEqual(decode(s, bytes), decodeFieldTable(s, dv));
    }),
    { numRuns: 2000 },
  );
});

test('u32Num / u64Num give the field as a number, or -1 for a u64 the number would round', () => {
  const s = 'vfio_iommu_type1_dma_map';
  const f = structs[s].fields;
  fc.assert(
    fc.property(
      fc.nat({ max: 0xffff_ffff }),
      fc.nat({ max: 0xffff_ffff }),
      fc.integer({ min: 0, max: 32 }),
      fc.nat({ max: 0xffff_ffff }),
      (hi, loBits, zeros, flags) => {
        const lo = Math.floor(loBits / 2 ** zeros) * 2 ** zeros;
        const bytes = new Uint8Array(structs[s].size);
        const dv = new DataView(bytes.buffer);
        const want = (BigInt(hi) << 32n) | BigInt(lo);
        dv.setBigUint64(f.iova.off, want, true);
        dv.setUint32(f.flags.off, flags, true);
        assert.equal(u32Num(bytes, f.flags.off), Number(getField(bytes, f.flags)));
        const n = u64Num(bytes, f.iova.off);
        if (n >= 0) assert.equal(BigInt(n), want);
        else assert.notEqual(BigInt(Number(want)), want);
      },
    ),
    { numRuns: 2000 },
  );
});

test('structBytesFromUser() fails as readStructFromUser() does, and hands out the argument', () => {
  for (const s of ['vfio_iommu_type1_dma_map', 'vfio_iommu_type1_dma_unmap'] as const) {
    const minsz = offsetofend(s, 'size');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: minsz + 8 }), fc.nat({ max: minsz + 8 }), (bytes, argsz) => {
        if (bytes.length >= 4) new DataView(bytes.buffer, bytes.byteOffset).setUint32(0, argsz, true);
        const want = readStructFromUser(bytes, s, 'size');
        const got = structBytesFromUser(bytes, minsz);
        if (typeof want === 'number') assert.equal(got, want);
        else assert.equal(got, bytes);
      }),
      { numRuns: 500 },
    );
    assert.equal(structBytesFromUser(5n, minsz), readStructFromUser(5n, s, 'size'));
  }
});
