/**
 * MmIommuRun's spans against its page-by-page answers: over random regions (kernel pages of 4K or
 * 64K, with page shifts that allow or refuse the IOMMU page), random IOMMU page sizes and random
 * starts, span() and hpas() give what region() and hpa() give for each page, and restart() from
 * a number keeps the same region as a lookup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type MmIommuRegion, MmIommuRun } from '../../src/kernel/mm-iommu.js';
import type { Process } from '../../src/kernel/process.js';

interface Shape {
  kernelShift: number;
  stepShift: number;
  /** Regions as [gap before it, entries], in kernel pages from the base. */
  regions: [number, number][];
  base: number;
  /** The start of the run, in IOMMU pages from the base. */
  startPage: number;
  pages: number;
}

const shape = fc.record({
  kernelShift: fc.constantFrom(12, 16),
  stepShift: fc.constantFrom(12, 13, 16, 18, 24),
  regions: fc.array(fc.tuple(fc.nat(4), fc.integer({ min: 1, max: 600 })), { minLength: 1, maxLength: 4 }),
  base: fc.constantFrom(0x1000_0000, 2 ** 52 - 2 ** 40, 2 ** 53 - 2 ** 41),
  startPage: fc.nat(64),
  pages: fc.integer({ min: 1, max: 300 }),
}) as fc.Arbitrary<Shape>;

function build(s: Shape): { proc: Process; regions: MmIommuRegion[] } {
  const kpage = 2 ** s.kernelShift;
  const regions: MmIommuRegion[] = [];
  let at = 0;
  let pfn = 7;
  for (const [gap, entries] of s.regions) {
    at += gap;
    const hpas = Array.from({ length: entries }, () => (pfn++ * 3 + 1) * kpage);
    regions.push({ ua: BigInt(s.base) + BigInt(at * kpage), entries, pageshift: at % 3 ? s.kernelShift : 24, hpas, pageShifts: null, used: 1, mapped: 1 });
    at += entries;
  }
  const proc = { mm: { iommuGroupMemList: [...regions].reverse() } } as unknown as Process;
  return { proc, regions };
}

test('span() and hpas() give the answers of region() and hpa() page by page', () => {
  fc.assert(
    fc.property(shape, (s) => {
      const { proc } = build(s);
      const step = 2 ** s.stepShift;
      const ua0 = BigInt(s.base) + BigInt(s.startPage * step);
      const byPage = new MmIommuRun(proc, s.kernelShift, step, ua0);
      const bySpan = new MmIommuRun(proc, s.kernelShift, step, ua0);
      const want: number[] = [];
      for (let m = 0; m < s.pages; m++) {
        const r = byPage.region(m * step);
        want.push(r ? byPage.hpa(r, m * step, s.stepShift) : r === null ? -2 : -1);
      }
      const got = new Float64Array(s.pages);
      for (let m = 0; m < s.pages; ) {
        const d = m * step;
        const r = bySpan.region(d);
        if (!r || s.stepShift > r.pageshift) {
          got[m] = r ? -1 : -2;
          m++;
          continue;
        }
        const k = Math.min(s.pages - m, bySpan.span(d, step));
        assert.ok(k >= 1);
        // The span ends where the region does.
        if (m + k < s.pages) assert.notEqual(byPage.region((m + k) * step), r);
        bySpan.hpas(r, d, step, k, got, m);
        m += k;
      }
      assert.deepEqual([...got], want);
    }),
    { numRuns: 400 },
  );
});

test('restart() keeps the region it found, with the same offsets as a fresh run', () => {
  fc.assert(
    fc.property(shape, fc.nat(64), (s, again) => {
      const { proc } = build(s);
      const step = 2 ** s.stepShift;
      const ua0 = BigInt(s.base) + BigInt(s.startPage * step);
      const ua1 = BigInt(s.base) + BigInt(again * step);
      const run = new MmIommuRun(proc, s.kernelShift, step, ua0);
      run.region(0);
      run.restart(ua1, step);
      const fresh = new MmIommuRun(proc, s.kernelShift, step, ua1);
      for (let m = 0; m < 8; m++) {
        const r = run.region(m * step);
        assert.equal(r, fresh.region(m * step));
        if (r && s.stepShift <= r.pageshift) assert.equal(run.hpa(r, m * step, s.stepShift), fresh.hpa(r, m * step, s.stepShift));
      }
    }),
    { numRuns: 400 },
  );
});

test('mappedDecSlots() counts down and zeroes the slots of valid entries as mappedDec() one by one', () => {
  fc.assert(
    fc.property(shape, fc.array(fc.tuple(fc.nat(700), fc.boolean()), { minLength: 1, maxLength: 64 }), (s, slots) => {
      const step = 2 ** s.stepShift;
      const kpage = 2 ** s.kernelShift;
      const a = build(s);
      const b = build(s);
      for (const [i, r] of a.regions.entries()) r.mapped = b.regions[i]!.mapped = [1, 41, 3][i % 3]!;
      const view = new DataView(new ArrayBuffer(8 * slots.length + 16));
      const old = new Float64Array(slots.length + 2);
      slots.forEach(([page, valid], j) => {
        // A user address (offset from 0) within or near the regions, and a valid or empty TCE.
        view.setBigUint64(8 + 8 * j, BigInt(s.base) + BigInt(page * kpage));
        old[j + 1] = valid ? 2 ** 40 + 3 : 2 ** 40;
      });
      const want = new DataView(view.buffer.slice(0));
      const one = new MmIommuRun(b.proc, s.kernelShift, step, 0n);
      slots.forEach(([, valid], j) => {
        if (!valid) return;
        one.mappedDec(Number(want.getBigUint64(8 + 8 * j)), s.stepShift);
        want.setBigUint64(8 + 8 * j, 0n);
      });
      new MmIommuRun(a.proc, s.kernelShift, step, 0n).mappedDecSlots(view, 8, old, 1, slots.length, 3, s.stepShift);
      assert.deepEqual(
        a.regions.map((r) => r.mapped),
        b.regions.map((r) => r.mapped),
      );
      assert.deepEqual(new Uint8Array(view.buffer), new Uint8Array(want.buffer));
    }),
    { numRuns: 400 },
  );
});
