/** Bit helpers: ilog2 and the powers of two rounded from it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ilog2, ilog2n, rounddownPow2, roundupPow2 } from '../../src/base/bits.js';

/** floor(log2(n)) by the binary digits: the reference. */
const digits = (n: bigint) => n.toString(2).length - 1;

test('ilog2 is the number of binary digits less one, on both sides of 2^32', () => {
  const around = fc.tuple(fc.integer({ min: 0, max: 80 }), fc.integer({ min: -2, max: 2 })).map(([e, d]) => (1n << BigInt(e)) + BigInt(d));
  fc.assert(
    fc.property(fc.oneof(fc.bigInt({ min: 1n, max: (1n << 70n) - 1n }), around), (n) => {
      fc.pre(n > 0n);
      assert.equal(ilog2(n), digits(n), `ilog2(${n})`);
      if (n < 2n ** 53n) assert.equal(ilog2n(Number(n)), digits(n), `ilog2n(${n})`);
      assert.equal(rounddownPow2(n), 1n << BigInt(digits(n)));
      assert.equal(roundupPow2(n), n === 1n ? 1n : 1n << BigInt(digits(n - 1n) + 1));
    }),
    { numRuns: 500 },
  );
});

test('ilog2 refuses zero and negatives, naming the value', () => {
  assert.throws(() => ilog2(0n), /ilog2 of 0/);
  assert.throws(() => ilog2(-5n), /ilog2 of -5/);
});
