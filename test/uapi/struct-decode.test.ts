import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decode, decodeFieldTable, hotDecoders, structs } from '../../src/kernel/include/uapi/linux/vfio.js';

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
