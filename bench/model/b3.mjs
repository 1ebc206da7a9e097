// B3 translation: device DMA reads of 8 bytes at seeded pseudo-random bus addresses through the
// populated 2 GiB default window (2 levels, every 64K TCE valid, entry i -> page i) of the first
// device into the device's buffer, with the PHB's TCE cache on or off (MachineOptions.tceCache).
// Work = translations.
import { load, mod, rng } from './common.mjs';

const { Machine } = await load('machine/machine.js');

export async function setup({ reads = 200000, seed = 777, cache = true }) {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k', tceCache: cache });
  const dev = m.devices[0];
  const fn = dev.hw;
  const tbl = dev.table;
  if (tbl.ops.set(tbl, tbl.itOffset, tbl.itSize, 0, 0) !== 0) throw new Error('B3: populate failed');
  const entries = tbl.itSize;
  const rnd = rng(seed);
  const buf = new Uint8Array(8);
  const run = () => {
    let ok = 0;
    for (let i = 0; i < reads; i++) {
      const entry = mod(rnd(), entries);
      const bus = entry * 65536 + (rnd() & 0xfff8);
      if (fn.dmaReadInto(bus, buf) === undefined) ok++;
    }
    return { work: reads, check: ok };
  };
  return { run, info: { cache } };
}
