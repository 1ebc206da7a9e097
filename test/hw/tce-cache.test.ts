import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TveCache } from '../../src/hw/tce-cache.js';

type Op = { kind: 'set'; index: number; tce: number } | { kind: 'delete'; index: number } | { kind: 'clear' };

const op = (maxIndex: number): fc.Arbitrary<Op> =>
  fc.oneof(
    fc.record({ kind: fc.constant('set' as const), index: fc.nat(maxIndex), tce: fc.nat() }),
    fc.record({ kind: fc.constant('delete' as const), index: fc.nat(maxIndex) }),
    fc.constant({ kind: 'clear' as const }),
  );

test('TveCache behaves as a Map for dense windows, large windows and indices past the arrays', () => {
  // span 64: dense, with indices up to 100 moving it to its Map; span 2^20: a Map from the start.
  for (const span of [64, 2 ** 20]) {
    fc.assert(
      fc.property(fc.array(op(100), { maxLength: 80 }), (ops) => {
        const c = new TveCache(span);
        const ref = new Map<number, number>();
        for (const o of ops) {
          if (o.kind === 'set') {
            c.set(o.index, o.tce);
            ref.set(o.index, o.tce);
          } else if (o.kind === 'delete') {
            c.delete(o.index);
            ref.delete(o.index);
          } else {
            c.clear();
            ref.clear();
          }
          assert.equal(c.size, ref.size);
        }
        for (let i = 0; i <= 100; i++) assert.equal(c.get(i), ref.get(i));
        assert.deepEqual(new Map([...c.entries()].sort((a, b) => a[0] - b[0])), new Map([...ref].sort((a, b) => a[0] - b[0])));
      }),
      { numRuns: 200 },
    );
  }
});
