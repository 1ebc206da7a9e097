/**
 * PhysMemory.pageView's views, found by page frame, against the memory they show: over random
 * writes (through views and through writeU64BE), whole-page zeroing, page migration and pages
 * dropped and their storage reused by allocPages, a view always reads what readU64BE reads, a
 * write through it is what readU64BE reads next, and a page never written has no view.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PhysMemory, viewSetU64BE, viewU64BE } from '../../src/hw/memory.js';

const PAGE_SHIFT = 12;
const PAGES = 24;

type Op =
  | { kind: 'write' | 'viewWrite' | 'read'; page: number; slot: number; value: number }
  | { kind: 'zero' | 'alloc'; page: number }
  | { kind: 'copy'; page: number; to: number };

const page = fc.nat(PAGES - 1);
const slot = fc.nat((1 << PAGE_SHIFT) / 8 - 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom('write' as const, 'viewWrite' as const, 'read' as const), page, slot, value: fc.maxSafeNat() }),
  fc.record({ kind: fc.constantFrom('zero' as const, 'alloc' as const), page }),
  fc.record({ kind: fc.constant('copy' as const), page, to: page }),
);

test('pageView: a page frame’s view shows its memory across writes, zeroing, migration and reuse', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const mem = new PhysMemory({ ramBytes: PAGES << PAGE_SHIFT, pageShift: PAGE_SHIFT, maxPageOrder: 0 });
      const written = new Set<number>();
      for (const o of ops) {
        const pa = o.page << PAGE_SHIFT;
        if (o.kind === 'write') {
          mem.writeU64BE(pa + o.slot * 8, o.value);
          written.add(o.page);
        } else if (o.kind === 'viewWrite') {
          viewSetU64BE(mem.pageView(pa, true)!, o.slot * 8, o.value);
          written.add(o.page);
          assert.equal(mem.readU64BE(pa + o.slot * 8), o.value);
        } else if (o.kind === 'zero') {
          mem.zero(pa, 1 << PAGE_SHIFT);
          written.delete(o.page);
        } else if (o.kind === 'alloc') {
          // An allocated page is zeroed: its storage goes to the spares, to be reused.
          const pfn = mem.allocPages(0, { kind: 'kernel', label: 't' });
          if (pfn === null) for (const b of [...mem.blocks()]) mem.freePages(b.pfn, b.order);
          else written.delete(pfn);
        } else if (o.kind === 'copy') {
          mem.copyPage(o.page, o.to);
          if (written.has(o.page)) written.add(o.to);
          else written.delete(o.to);
        }
        // The pages the op touched (checking every page would refill the recent-page slots).
        for (const p of o.kind === 'copy' ? [o.page, o.to] : [o.page]) {
          const at = (p << PAGE_SHIFT) + ('slot' in o ? o.slot * 8 : 0);
          const v = mem.pageView(at, false);
          assert.equal(v !== null, written.has(p), `page ${p} has a view exactly when written`);
          if (v) assert.equal(viewU64BE(v, at & ((1 << PAGE_SHIFT) - 1)), mem.readU64BE(at));
        }
      }
    }),
    { numRuns: 300 },
  );
});
