// Helpers shared by the model side of the workloads: the seeded generator (the same xorshift32
// as bench/c/common.h) and the dist/ import root.
export const DIST = new URL('../../dist/src/', import.meta.url);

/** Import a compiled model module by its path under src/, e.g. 'machine/machine.js'. */
export function load(path) {
  return import(new URL(path, DIST).href);
}

/** xorshift32: the same sequence as xs32() in bench/c/common.h. */
export function rng(seed) {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
