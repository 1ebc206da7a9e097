/** The PHB's RID translation table against a Map under random set/delete, and its range errors. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RID_COUNT, RidTable } from '../../src/hw/rtt.js';

type Op = { kind: 'set'; rid: number; pe: number } | { kind: 'delete'; rid: number };

test('RidTable answers as a Map of RID to PE', () => {
  const rid = fc.oneof(fc.nat(16), fc.constantFrom(0x100, 0x108, RID_COUNT - 1));
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), rid, pe: fc.oneof(fc.nat(511), fc.constant(0xfffe)) }),
    fc.record({ kind: fc.constant('delete' as const), rid }),
  );
  const probes = [...Array(17).keys(), 0x100, 0x108, RID_COUNT - 1, RID_COUNT, -1, 1.5, Number.NaN];
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const t = new RidTable();
      const ref = new Map<number, number>();
      for (const o of ops) {
        if (o.kind === 'set') {
          t.set(o.rid, o.pe);
          ref.set(o.rid, o.pe);
        } else assert.equal(t.delete(o.rid), ref.delete(o.rid));
      }
      for (const r of probes) {
        assert.equal(t.get(r), ref.get(r), `get(${r})`);
        assert.equal(t.peOf(r), ref.get(r) ?? -1, `peOf(${r})`);
      }
    }),
    { numRuns: 300 },
  );
});

test('RidTable refuses a RID or PE out of range, naming the field and the limit', () => {
  const t = new RidTable();
  assert.throws(() => t.set(RID_COUNT, 1), /RTT rid 65536: must be an integer in \[0, 65535\]/);
  assert.throws(() => t.set(-1, 1), /RTT rid -1/);
  assert.throws(() => t.set(0x100, -1), /RTT pe -1: must be an integer in \[0, 65534\]/);
  assert.throws(() => t.set(0x100, 0xffff), /RTT pe 65535/);
  assert.throws(() => t.set(0x100, 1.5), /RTT pe 1.5/);
  assert.equal(t.get(0x100), undefined);
});
