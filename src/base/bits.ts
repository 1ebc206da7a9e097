/** Bit helpers shared by every layer. Addresses are bigint at API edges, number (< 2^53) inside. */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export function isPowerOf2(n: bigint): boolean {
  return n > 0n && (n & (n - 1n)) === 0n;
}

/** floor(log2(n)) for n > 0, like the kernel's ilog2(). */
export function ilog2(n: bigint): number {
  if (n <= 0n) throw new RangeError(`ilog2 of ${n}`);
  // Below 2^64 clz32 of the (exact) high or low half; above, the binary digits.
  if (n <= 0xffff_ffffn) return 31 - Math.clz32(Number(n));
  if (n <= 0xffff_ffff_ffff_ffffn) return 63 - Math.clz32(Number(n >> 32n));
  return n.toString(2).length - 1;
}

/** ilog2() of a positive integer number (exact below 2^53). */
export function ilog2n(n: number): number {
  if (n <= 0) throw new RangeError(`ilog2 of ${n}`);
  return n < 2 ** 32 ? 31 - Math.clz32(n) : ilog2(BigInt(Math.floor(n)));
}

/** The kernel's roundup_pow_of_two(). */
export function roundupPow2(n: bigint): bigint {
  if (n <= 1n) return 1n;
  return 1n << BigInt(ilog2(n - 1n) + 1);
}

export function rounddownPow2(n: bigint): bigint {
  return 1n << BigInt(ilog2(n));
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export function alignUpBig(n: bigint, a: bigint): bigint {
  return ((n + a - 1n) / a) * a;
}

export const U64_MAX = (1n << 64n) - 1n;

export function hex(n: bigint | number): string {
  return n.toString(16);
}

/** Exact conversion of a bigint below 2^53 to number; a model bug otherwise. */
export function toNum(n: bigint): number {
  if (n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`${n} is not an exact number`);
  return Number(n);
}

/** The smaller of two bigints (Math.min takes numbers only). */
export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** The larger of two bigints. */
export function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

const POW2 = Array.from({ length: 64 }, (_, i) => 2 ** i);

/** 2 ** shift for an integer shift: a table for 0..63 (a variable-exponent `**` costs a call to pow in V8). */
export function pow2(shift: number): number {
  return shift >= 0 && shift < 64 ? POW2[shift]! : 2 ** shift;
}

/** Number(x >> BigInt(shift)), without a BigInt operation when x is in [0, 2^53). */
export function shrToNum(x: bigint, shift: number): number {
  // Number() rounds monotonically: a result in [0, 2^53) means x was exactly that.
  const n = Number(x);
  return n >= 0 && n <= Number.MAX_SAFE_INTEGER ? Math.floor(n / pow2(shift)) : Number(x >> BigInt(shift));
}

/** BigInt(n) << BigInt(shift) for an integer n ≥ 0, with one conversion when the result fits 2^53. */
export function shlToBig(n: number, shift: number): bigint {
  const v = n * pow2(shift);
  return v <= Number.MAX_SAFE_INTEGER ? BigInt(v) : BigInt(n) << BigInt(shift);
}
