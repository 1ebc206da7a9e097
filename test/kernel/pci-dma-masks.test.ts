/**
 * The DMA masks in IOMMU pages that a PCI device keeps for the DMA API (KPciDev.maskPages and
 * boundaryPages) against their definitions, over random mask changes and page shifts: after any
 * change the next answer is the new mask's, and the DMA API's helpers give what they give for a
 * device that keeps nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type DmaDevice, dmaGetSegBoundaryNrPages } from '../../src/kernel/dma-api.js';
import { Machine } from '../../src/machine/machine.js';

type Step = { kind: 'mask' | 'boundary'; bits: number } | { kind: 'ask'; shift: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constantFrom('mask' as const, 'boundary' as const), bits: fc.integer({ min: 12, max: 64 }) }),
  fc.record({ kind: fc.constant('ask' as const), shift: fc.constantFrom(12, 16, 21, 24, 30, 34) }),
);

test('KPciDev: DMA mask and segment boundary in pages as their definitions, across mask changes', () => {
  const dev = new Machine({ preset: 'powernv9', pageSize: '64k' }).devices[0]!;
  fc.assert(
    fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
      for (const s of steps) {
        if (s.kind !== 'ask') {
          if (s.kind === 'mask') dev.dmaMask = (1n << BigInt(s.bits)) - 1n;
          else dev.segBoundaryMask = (1n << BigInt(s.bits)) - 1n;
          continue;
        }
        assert.equal(dev.maskPages(s.shift), Number(dev.dmaMask >> BigInt(s.shift)));
        assert.equal(dev.boundaryPages(s.shift), Number(dev.segBoundaryMask >> BigInt(s.shift)) + 1);
        // The same answer through a device that keeps nothing (a plain struct).
        const plain: DmaDevice = { ...dev, dmaMask: dev.dmaMask, segBoundaryMask: dev.segBoundaryMask, maskPages: undefined, boundaryPages: undefined };
        assert.equal(dmaGetSegBoundaryNrPages(dev, s.shift), dmaGetSegBoundaryNrPages(plain, s.shift));
      }
    }),
    { numRuns: 300 },
  );
});
