import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DENSE_LIMIT, TveCache } from '../../src/hw/tce-cache.js';

type Op = { kind: 'set'; index: number; tce: number } | { kind: 'delete'; index: number } | { kind: 'clear' };

const op = (index: fc.Arbitrary<number>): fc.Arbitrary<Op> =>
  fc.oneof(
    fc.record({ kind: fc.constant('set' as const), index, tce: fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })) }),
    fc.record({ kind: fc.constant('delete' as const), index }),
    fc.constant({ kind: 'clear' as const }),
  );

test('TveCache behaves as a Map in its chunks and past them', () => {
  // span 64: one chunk of 4096 pages, indices from 4090 on past it; span 2^30: chunks up to
  // DENSE_LIMIT, indices around it.
  const cases: [number, number[]][] = [
    [64, [0, 1, 63, 64, 100, 4095, 4096, 4097, 9000]],
    [2 ** 30, [0, 4095, 4096, DENSE_LIMIT - 1, DENSE_LIMIT, DENSE_LIMIT + 1, 2 ** 30 - 1]],
  ];
  for (const [span, probes] of cases) {
    const index = fc.oneof(fc.nat(100), fc.constantFrom(...probes), fc.integer({ min: 4090, max: 4200 }));
    fc.assert(
      fc.property(fc.array(op(index), { maxLength: 80 }), (ops) => {
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
        for (const i of [...probes, ...ref.keys()]) assert.equal(c.get(i), ref.get(i) ?? -1);
        for (let i = 0; i <= 100; i++) assert.equal(c.get(i), ref.get(i) ?? -1);
        assert.deepEqual(new Map([...c.entries()].sort((a, b) => a[0] - b[0])), new Map([...ref].sort((a, b) => a[0] - b[0])));
      }),
      { numRuns: 300 },
    );
  }
});
