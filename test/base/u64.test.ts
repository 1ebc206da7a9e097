/** bigint ↔ number through 32-bit halves against BigInt() and Number(). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { numToU64, u64ToNum } from '../../src/base/u64.js';

test('u64ToNum is Number() for bigints in [0, 2^53) and -1 for any other', () => {
  const edges = [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n, 2n ** 64n, 2n ** 64n + 5n, -1n, -(2n ** 64n) + 3n];
  const b = fc.oneof(fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), fc.bigInt({ min: 0n, max: 2n ** 53n }), fc.constantFrom(...edges));
  fc.assert(
    fc.property(b, (v) => {
      assert.equal(u64ToNum(v), v >= 0n && v < 2n ** 53n ? Number(v) : -1);
    }),
    { numRuns: 2000 },
  );
});

test('numToU64 is BigInt() for integers in [0, 2^53) and refuses others, naming the limit', () => {
  const n = fc.oneof(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.nat(2 ** 32), fc.constantFrom(0, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1));
  fc.assert(
    fc.property(n, (v) => {
      assert.equal(numToU64(v), BigInt(v));
    }),
    { numRuns: 2000 },
  );
  for (const bad of [-1, 2 ** 53, 1.5, Number.NaN]) assert.throws(() => numToU64(bad), /must be an integer in \[0, 2\^53\)/);
});
