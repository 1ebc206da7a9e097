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
