/**
 * OPAL_PCI_TCE_KILL's argument checks (the TCE size among the PHB's shifts, the address aligned
 * to it and below 2^60) against their plain definitions, for any size and address, number or
 * bigint: the same return codes, and a PE kill only when the call succeeds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EventLog } from '../../src/base/events.js';
import { OPAL_PARAMETER, OPAL_PCI_TCE_KILL_PAGES, OPAL_SUCCESS, Opal } from '../../src/firmware/opal.js';
import { PhysMemory } from '../../src/hw/memory.js';
import { Phb } from '../../src/hw/phb.js';

function expected(phb: Phb, pe: number, tceSize: number, addr: bigint | number): number {
  const sizeOk = phb.gen.tceShifts.some((s) => tceSize === 2 ** s);
  if (!sizeOk) return OPAL_PARAMETER;
  const a = typeof addr === 'bigint' ? addr : Number.isInteger(addr) ? BigInt(addr) : null;
  if (a === null || a < 0n || a % BigInt(tceSize) !== 0n || a >> 60n !== 0n) return OPAL_PARAMETER;
  return pe >= 0 && pe < phb.numPes ? OPAL_SUCCESS : OPAL_PARAMETER;
}

const size = fc.oneof(
  fc.integer({ min: 0, max: 40 }).map((s) => 2 ** s),
  fc.integer({ min: -5, max: 2 ** 32 }),
  fc.double({ min: 0, max: 2 ** 20, noNaN: true }),
);
const addr = fc.oneof(
  fc.nat(2 ** 32 - 1).map((n) => n - (n % 4096)),
  // Multiples of a size, or a few bytes off them.
  fc.tuple(fc.nat(2 ** 20), fc.constantFrom(12, 16, 21, 30), fc.constantFrom(0, 0, 1, 8, 4096)).map(([n, s, d]) => n * 2 ** s + d),
  fc.nat(2 ** 32 - 1),
  fc.integer({ min: -(2 ** 20), max: 0 }),
  fc.maxSafeNat(),
  fc.double({ min: 0, max: 2 ** 33, noNaN: true }),
  fc.bigInt({ min: 0n, max: 1n << 62n }),
  fc.bigInt({ min: 0n, max: 1n << 62n }).map((b) => b & ~0xffffn),
);

/** A size the PHB supports with an address near one of its multiples. */
const sizedAddr = fc
  .tuple(fc.constantFrom(12, 16, 21, 30), fc.nat(2 ** 22), fc.constantFrom(0, 0, 1, 8, 4096, 65536))
  .map(([s, n, d]): [number, number] => [2 ** s, n * 2 ** s + d]);

test('OPAL page kill: size and address checks as their definitions', () => {
  const log = new EventLog();
  const mem = new PhysMemory({ ramBytes: 2 ** 26, pageShift: 16, maxPageOrder: 8 }, log);
  const phb = new Phb(0, 'PHB4', mem, log);
  const opal = new Opal([phb], log);
  fc.assert(
    fc.property(fc.integer({ min: -1, max: 256 }), fc.oneof(fc.tuple(size, addr), sizedAddr), (pe, [tceSize, a]) => {
      const kills = phb.kills;
      const rc = opal.pciTceKill(0, OPAL_PCI_TCE_KILL_PAGES, pe, tceSize, a, 1);
      assert.equal(rc, expected(phb, pe, tceSize, a));
      assert.equal(phb.kills, kills + (rc === OPAL_SUCCESS ? 1 : 0));
    }),
    { numRuns: 3000 },
  );
});
