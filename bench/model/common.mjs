// Helpers shared by the model side of the workloads: the seeded generator (the same xorshift32
// as bench/c/common.h) and the dist/ import root.
export const DIST = new URL('../../dist/src/', import.meta.url);

/** Import a compiled model module by its path under src/, e.g. 'machine/machine.js'. */
export function load(path) {
  return import(new URL(path, DIST).href);
}

/**
 * xorshift32: the same sequence as xs32() in bench/c/common.h. The state stays a signed 32-bit
 * integer (the same bits), which V8 keeps unboxed; a state past 2^31 would be a heap number
 * allocated on every call.
 */
export function rng(seed) {
  let x = seed | 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/**
 * `x % n` for integers x and n below 2^32 without `%`, which V8 turns into a call to fmod for
 * numbers past 2^31 (the rounded quotient x / n stays below the next integer: exact).
 */
export function mod(x, n) {
  return x - Math.floor(x / n) * n;
}
