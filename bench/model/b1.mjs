// B1 kernel DMA API: dma_map_single/unmap of 1-16 64K pages at seeded pseudo-random physical
// addresses through the boot-time 2 GiB default window (2 levels, pooled allocator) of the
// first device of a powernv9 machine. 64 mappings stay outstanding; each op unmaps the oldest
// and maps a new one. The check is the sum of the bus page numbers, equal to the C baseline's.
import { load, mod, rng } from './common.mjs';

const { Machine } = await load('machine/machine.js');
const { dmaMapPage, dmaUnmapPage } = await load('kernel/dma-api.js');

const RING = 64;
const PAGE = 65536;
// A bus address's two 32-bit halves, as the C's (uint32_t)(dma >> 16) takes them: one store of
// the u64, no range checks (a bus address is a u64).
const u64 = new BigUint64Array(1);
const u32 = new Uint32Array(u64.buffer);
const LO = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;
const HI = 1 - LO;

export async function setup({ ops = 200000, seed = 12345 }) {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k' });
  const dev = m.devices[0];
  const tbl = dev.table;
  if (!tbl || dev.bypass || tbl.itPageShift !== 16 || tbl.windowSize !== 2n ** 31n) throw new Error('B1: unexpected default window');
  const ramPages = m.mem.ramBytes / PAGE;
  const rnd = rng(seed);
  // The outstanding mappings: bus address and size by ring slot (size 0: none).
  const ringDma = new Array(RING).fill(0n);
  const ringSize = new Int32Array(RING);
  const run = () => {
    let sum = 0;
    for (let i = 0; i < ops; i++) {
      const slot = i & (RING - 1);
      if (ringSize[slot] !== 0) dmaUnmapPage(dev, ringDma[slot], ringSize[slot], 0, m.log);
      const size = ((rnd() & 15) + 1) * PAGE;
      const pa = mod(rnd(), ramPages - 16) * PAGE;
      const dma = dmaMapPage(dev, pa, size, 0, 16, i & 3, m.log);
      if (dma === null) throw new Error('B1: map failed');
      // The bus page number, (uint32_t)(dma >> 16).
      u64[0] = dma;
      sum = (sum + ((u32[HI] << 16) | (u32[LO] >>> 16))) >>> 0;
      ringDma[slot] = dma;
      ringSize[slot] = size;
    }
    for (let k = 0; k < RING; k++) {
      if (ringSize[k] !== 0) dmaUnmapPage(dev, ringDma[k], ringSize[k], 0, m.log);
      ringSize[k] = 0;
    }
    return { work: ops, check: sum };
  };
  return { run, info: { window: `${tbl.itSize} TCEs of 64K, ${tbl.itIndirectLevels + 1} levels` } };
}
