/**
 * bigint ↔ number for unsigned 64-bit values below 2^53 (bus and physical addresses), through a
 * BigUint64Array and its two 32-bit halves: V8's `BigInt(n)` and `Number(b)` are runtime calls
 * (about 50 and 30 ns), these are a few loads and stores (and one bigint allocation for numToU64).
 */

const u64 = new BigUint64Array(1);
const u32 = new Uint32Array(u64.buffer);
/** The index of the low 32-bit half in `u32` (0 on a little-endian host). */
const LO = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;
const HI = 1 - LO;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Number(b) when b is an integer in [0, 2^53), else -1. */
export function u64ToNum(b: bigint): number {
  if (b < 0n || b > MAX_SAFE) return -1;
  u64[0] = b;
  return u32[HI]! * 0x1_0000_0000 + u32[LO]!;
}

/** BigInt(n) of an integer n in [0, 2^53). */
export function numToU64(n: number): bigint {
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new RangeError(`numToU64 ${n}: must be an integer in [0, 2^53)`);
  const lo = n >>> 0;
  u32[LO] = lo;
  u32[HI] = (n - lo) / 0x1_0000_0000;
  return u64[0]!;
}
