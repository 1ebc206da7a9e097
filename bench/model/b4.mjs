// B4 scale: a 1 TiB DDW of 64K pages (2^24 TCEs, 2 levels) created through the PE's table-group
// ops (create_table + set_window on window #1, as enable_ddw does), mapped in full through
// iommu_table ops.set in chunks of 65536 TCEs (each with its TCE kill), then walked by the PHB:
// one translation per TCE, TCE cache off (its Map would otherwise hold 2^24 keys). The table is
// freed after each run. Memory: peak RSS (to the end of the first run) over the RSS before the
// first build, per TCE.
import { load } from './common.mjs';

const { Machine } = await load('machine/machine.js');
const { iommuTceTablePut } = await load('kernel/iommu-table.js');

export async function setup({ windowShift = 40, chunk = 65536 }) {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k', ramBytes: 8 * 2 ** 30, tceCache: false });
  const dev = m.devices[0];
  const pe = m.peOf(dev);
  const phb = dev.hw.phb;
  const entries = 2 ** (windowShift - 16);
  const ramPages = m.mem.ramBytes / 65536;
  global.gc?.();
  const rssBefore = process.memoryUsage.rss();
  let tables = 0;
  let firstPeak = 0;
  const run = () => {
    const t0 = performance.now();
    const tbl = pe.ops.createTable(pe, 1, 16, 2n ** BigInt(windowShift), 2);
    if (typeof tbl === 'number' || pe.ops.setWindow(pe, 1, tbl) !== 0) throw new Error('B4: window setup failed');
    for (let e = 0; e < entries; e += chunk) {
      const pa = ((e % ramPages) * 65536) % m.mem.ramBytes;
      if (tbl.ops.set(tbl, tbl.itOffset + e, chunk, pa, 0) !== 0) throw new Error('B4: set failed');
    }
    const tMap = performance.now();
    let ok = 0;
    const base = tbl.start;
    for (let e = 0; e < entries; e++) {
      if (phb.translate(pe.peNumber, base + (BigInt(e) << 16n), false).pa !== undefined) ok++;
    }
    const tWalk = performance.now();
    tables = tbl.levelBlocks.size;
    pe.ops.unsetWindow(pe, 1);
    // The creator's reference: the kernel's remove_ddw frees the table after unsetting it.
    iommuTceTablePut(tbl);
    // One table's cost: the peak up to the end of the first run. Later runs also hold the
    // previous table's freed pages until the GC collects them (reported as peakBytesPerTce).
    if (!firstPeak) firstPeak = process.resourceUsage().maxRSS * 1024;
    return { work: entries, check: ok, extra: { levelBlocks: tables, mapS: (tMap - t0) / 1e3, walkS: (tWalk - tMap) / 1e3 } };
  };
  const finish = () => {
    const peak = process.resourceUsage().maxRSS * 1024;
    return { rssBefore, bytesPerTce: (firstPeak - rssBefore) / entries, peakBytesPerTce: (peak - rssBefore) / entries };
  };
  return { run, finish, info: { entries } };
}
