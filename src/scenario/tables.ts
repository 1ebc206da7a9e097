/**
 * A TCE table as a report: its levels with their occupancy, a heat strip of valid entries
 * aggregated into buckets (a 2^24-entry table is summarised here, never shipped whole), and
 * individual entries with their real address, permission bits and any copy the PHB's TCE cache
 * holds that memory no longer does.
 */
import { TCE_PCI_READ, TCE_PCI_WRITE, tceAddr, tcePerm } from '../hw/tce.js';
import type { HwptPaging } from '../iommufd/context.js';
import type { IommuTable } from '../kernel/iommu-table.js';
import type { Machine } from '../machine/machine.js';
import { domainWindows } from './iommufd-report.js';

export interface LevelReport {
  /** 0 = the leaf level (the TCEs a device uses). */
  level: number;
  /** Level blocks allocated, and how many the level can have. */
  blocks: number;
  maxBlocks: number;
  /** Valid entries (a permission bit set) at this level. */
  valid: number;
}

export interface TableReport {
  id: number;
  freed: boolean;
  start: string;
  pageSize: number;
  entries: number;
  levels: number;
  levelSize: number;
  /** Level by level, leaf first. */
  occupancy: LevelReport[];
  valid: number;
  /** Valid leaf entries per bucket of `bucketSize` consecutive entries. */
  bucketSize: number;
  heat: number[];
  /** TVEs that point at the table ("PHB0 TVE#4"), and cached entries that memory contradicts. */
  tves: string[];
  cached: number;
  stale: number;
}

export interface TceReport {
  index: number;
  bus: string;
  tce: string;
  pa: string;
  read: boolean;
  write: boolean;
  /** The PHB's cached copy of the entry, when it holds one. */
  cached: string | null;
  stale: boolean;
}

export const MAX_TCES_PER_REQUEST = 4096;

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

/** Every table a report can name: the PEs' windows, the IOMMU groups', the containers' and the IOMMUFD domains'. */
export function findTable(m: Machine, id: number): IommuTable | undefined {
  for (const p of m.pnvPhbs) for (const pe of p.pes.values()) for (const t of pe.tables) if (t?.id === id) return t;
  for (const g of m.groups) for (const t of g.tableGroup.tables) if (t?.id === id) return t;
  for (const g of m.vfioGroups.values()) for (const t of g.container?.iommuData?.tables ?? []) if (t?.id === id) return t;
  for (const d of m.devices) if (d.table?.id === id) return d.table;
  for (const ctx of m.iommufd?.contexts ?? [])
    for (const h of ctx.objectsOf<HwptPaging>('hwpt_paging')) for (const w of h.domain ? domainWindows(h.domain) : []) if (w.table.id === id) return w.table;
  return undefined;
}

/** The PHB TCE caches in front of a table: every translating TVE whose table address is its top level. */
function cachesOf(m: Machine, t: IommuTable): { name: string; entries: ReadonlyMap<number, number> | undefined }[] {
  const out = [];
  for (const phb of m.phbs) {
    for (let i = 0; i < phb.numPes * 2; i++) {
      const tve = phb.getTve(i);
      if (tve?.kind === 'xlate' && tve.tableAddr === t.itBase) out.push({ name: `PHB${phb.index} TVE#${i}`, entries: phb.cachedEntries(i) });
    }
  }
  return out;
}

function levelSizeOf(t: IommuTable): number {
  return t.itIndirectLevels ? t.itLevelSize : t.itSize;
}

/** The memory address of leaf entry `slot`, or null when a level on the way is not allocated. */
function leafAddr(m: Machine, t: IommuTable, slot: number): number | null {
  const size = levelSizeOf(t);
  let base = t.itBase;
  for (let lev = t.itIndirectLevels; lev > 0; lev--) {
    const e = m.mem.readU64BE(base + (Math.floor(slot / size ** lev) % size) * 8);
    if (!tcePerm(e)) return null;
    base = tceAddr(e);
  }
  return base + (slot % size) * 8;
}

export function tableReport(m: Machine, t: IommuTable, buckets = 1024): TableReport {
  const size = levelSizeOf(t);
  const nb = Math.max(1, Math.min(buckets, t.itSize));
  const bucketSize = Math.ceil(t.itSize / nb);
  const heat = new Array<number>(Math.ceil(t.itSize / bucketSize)).fill(0);
  const levels: LevelReport[] = [];
  for (let l = 0; l <= t.itIndirectLevels; l++) levels.push({ level: l, blocks: 0, maxBlocks: Math.ceil(t.itSize / size ** (l + 1)), valid: 0 });
  const walk = (base: number, lev: number, first: number) => {
    const L = levels[lev]!;
    L.blocks++;
    const n = Math.min(size, Math.ceil((t.itSize - first) / size ** lev));
    for (let i = 0; i < n; i++) {
      const e = m.mem.readU64BE(base + i * 8);
      if (!tcePerm(e)) continue;
      L.valid++;
      const idx = first + i * size ** lev;
      if (lev === 0) heat[Math.floor(idx / bucketSize)]!++;
      else walk(tceAddr(e), lev - 1, idx);
    }
  };
  if (!t.freed && t.itBase) walk(t.itBase, t.itIndirectLevels, 0);
  let cached = 0;
  let stale = 0;
  const caches = t.freed ? [] : cachesOf(m, t);
  for (const c of caches) {
    for (const [slot, tce] of c.entries ?? []) {
      cached++;
      const a = slot < t.itSize ? leafAddr(m, t, slot) : null;
      if ((a === null ? 0 : m.mem.readU64BE(a)) !== tce) stale++;
    }
  }
  return {
    id: t.id,
    freed: t.freed,
    start: hex(t.start),
    pageSize: t.pageSize,
    entries: t.itSize,
    levels: t.itIndirectLevels + 1,
    levelSize: size,
    occupancy: levels,
    valid: levels[0]!.valid,
    bucketSize,
    heat,
    tves: caches.map((c) => c.name),
    cached,
    stale,
  };
}

/** Leaf entries `from`..`from+count-1` (at most MAX_TCES_PER_REQUEST). */
export function tceEntries(m: Machine, t: IommuTable, from: number, count: number): TceReport[] {
  const caches = t.freed ? [] : cachesOf(m, t);
  const out: TceReport[] = [];
  const end = Math.min(t.itSize, from + Math.min(count, MAX_TCES_PER_REQUEST));
  for (let slot = Math.max(0, from); slot < end; slot++) {
    const a = t.freed ? null : leafAddr(m, t, slot);
    const tce = a === null ? 0 : m.mem.readU64BE(a);
    let copy: number | undefined;
    for (const c of caches) copy ??= c.entries?.get(slot);
    out.push({
      index: t.itOffset + slot,
      bus: hex(BigInt(t.itOffset + slot) << BigInt(t.itPageShift)),
      tce: hex(tce),
      pa: hex(tceAddr(tce)),
      read: (tce & TCE_PCI_READ) !== 0,
      write: (tce & TCE_PCI_WRITE) !== 0,
      cached: copy === undefined ? null : hex(copy),
      stale: copy !== undefined && copy !== tce,
    });
  }
  return out;
}
