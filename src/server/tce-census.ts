/**
 * How many valid TCEs the tables of a table group hold, read from the table memory itself (what a
 * device could still DMA through), walking only the indirect levels that exist.
 */
import type { PhysMemory } from '../hw/memory.js';
import { tceAddr, TCE_ENTRY_SIZE } from '../hw/tce.js';
import type { IommuTable } from '../kernel/iommu-table.js';
import type { TableGroup } from '../kernel/table-group.js';

function countLevel(mem: PhysMemory, base: number, entries: number, level: number, levelSize: number): number {
  let n = 0;
  for (let i = 0; i < entries; i++) {
    const slot = base + i * TCE_ENTRY_SIZE;
    if (!mem.isRam(slot)) break;
    const tce = mem.readU64BE(slot);
    if (!tce) continue;
    n += level ? countLevel(mem, tceAddr(tce), levelSize, level - 1, levelSize) : 1;
  }
  return n;
}

export function validTces(mem: PhysMemory, tbl: IommuTable): number {
  const levels = tbl.itIndirectLevels;
  const top = levels ? Math.min(tbl.itLevelSize, Math.ceil(tbl.itSize / tbl.itLevelSize ** levels)) : tbl.itSize;
  return countLevel(mem, tbl.itBase, top, levels, tbl.itLevelSize);
}

export function groupTces(mem: PhysMemory, tg: TableGroup): number {
  return tg.tables.reduce((n, t) => n + (t && !t.freed ? validTces(mem, t) : 0), 0);
}
