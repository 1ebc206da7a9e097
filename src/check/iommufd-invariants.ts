/**
 * The invariants of IOMMUFD users: who programs a PE, what its TCEs say, and what they are
 * charged. Checked after every step with the others (check/invariants.ts).
 */
import { maxBig, minBig } from '../base/bits.js';
import type { HwptPaging, Ioas, IommufdCtx } from '../iommufd/context.js';
import type { IoptPages } from '../iommufd/pages.js';
import { tceAddr, tcePerm, TCE_PCI_WRITE } from '../hw/tce.js';
import type { IommuDomain, IommuGroup } from '../kernel/iommu-group.js';
import { IOMMU_WRITE } from '../kernel/iommu-group.js';
import type { IommuTable } from '../kernel/iommu-table.js';
import { isPpc64TceDomain } from '../kernel/ppc64-iommu.js';
import type { Process } from '../kernel/process.js';
import { isPpc64Domain } from '../kernel/spapr-tce-iommu.js';
import type { Machine } from '../machine/machine.js';

export const IOMMUFD_INVARIANTS = {
  'iommufd-blocked-pe-no-window': 'a PE in the blocked domain of an IOMMUFD user has no DMA window: nothing translates for it',
  'iommufd-attached-pe-translates': "every PE attached to a paging domain translates through that domain's tables",
  'iommufd-tce-matches-area':
    'every valid TCE of a domain lies in an IOAS area, points at the page pinned for it, and is writable only if the map was WRITEABLE',
  'tce-tables-reachable': 'every TCE table in memory belongs to a PE, a VFIO container or a live IOMMU domain: nothing leaks',
} as const;

export type IommufdInvariant = keyof typeof IOMMUFD_INVARIANTS;

type Report = (invariant: IommufdInvariant, detail: string) => void;

/** The TCE tables of a paging domain, with the bus address each starts at. */
function domainTables(d: IommuDomain): { table: IommuTable; start: bigint }[] {
  if (isPpc64Domain(d)) return [{ table: d.table, start: 0n }];
  if (isPpc64TceDomain(d)) return d.windows.map((w) => ({ table: w.table, start: w.start }));
  return [];
}

function ownedByIommufd(g: IommuGroup, contexts: Set<IommufdCtx>): boolean {
  return !!g.owner && contexts.has(g.owner as IommufdCtx);
}

export function checkIommufd(m: Machine, report: Report): void {
  const platform = m.iommufd;
  if (!platform) return;
  for (const g of m.groups) {
    if (!g.devices.length || !ownedByIommufd(g, platform.contexts)) continue;
    const tg = g.tableGroup;
    if (g.domain === 'blocked') {
      const live = tg.tables.map((t, i) => (t ? `window #${i}` : null)).filter(Boolean);
      if (live.length) report('iommufd-blocked-pe-no-window', `group ${g.id} (${tg.label}) is blocked but its PE still has ${live.join(' and ')}`);
    } else if (g.domain === 'paging') {
      // The PE's windows are the domain's: none missing, none of anyone else's.
      const mine = domainTables(g.current).map((x) => x.table);
      if (mine.some((t) => !tg.tables.includes(t)) || tg.tables.some((t) => t && !mine.includes(t)))
        report(
          'iommufd-attached-pe-translates',
          `group ${g.id} (${tg.label}) is attached to ${g.current.label} but its PE's windows are ${tg.tables.map((t) => (t ? `table#${t.id}` : 'none')).join(', ')}`,
        );
    }
  }
  for (const ctx of platform.contexts) for (const ioas of ctx.objectsOf<Ioas>('ioas')) checkAreas(m, ioas, report);
  checkReachable(m, report);
}

/** TCE table blocks whose iommu_table nothing holds any more. */
function checkReachable(m: Machine, report: Report): void {
  const live = new Set<number>();
  for (const g of m.groups) for (const t of g.tableGroup.tables) if (t) live.add(t.id);
  for (const p of m.pnvPhbs) for (const pe of p.pes.values()) for (const t of pe.tables) if (t) live.add(t.id);
  for (const g of m.vfioGroups.values()) for (const t of g.container?.iommuData?.tables ?? []) if (t) live.add(t.id);
  for (const ctx of m.iommufd?.contexts ?? [])
    for (const h of ctx.objectsOf<HwptPaging>('hwpt_paging')) if (h.domain) for (const { table } of domainTables(h.domain)) live.add(table.id);
  for (const b of m.mem.blocks()) {
    if (b.owner.kind !== 'tce-table' && b.owner.kind !== 'tce-shadow') continue;
    const id = Number(/iommu_table#(\d+)/.exec(b.owner.label)?.[1]);
    if (!live.has(id))
      report(
        'tce-tables-reachable',
        `${b.owner.label}: ${(m.mem.pageSize * 2 ** b.order) / 1024} KiB allocated, but no PE, container or domain holds the table`,
      );
  }
}

/** Every area's TCEs in every domain of the IOAS, and every valid TCE inside some area. */
function checkAreas(m: Machine, ioas: Ioas, report: Report): void {
  const iopt = ioas.iopt;
  for (const d of iopt.domains) {
    const tables = domainTables(d);
    const covered = new Map<IommuTable, Set<number>>();
    for (const area of iopt.areas) {
      if (!area.pages || !area.filled) continue;
      for (const { table, start } of tables) {
        const tps = BigInt(table.pageSize);
        const end = start + table.windowSize - 1n;
        const lo = maxBig(area.iova, start);
        const hi = minBig(area.last, end);
        if (lo > hi) continue;
        const seen = covered.get(table) ?? new Set<number>();
        covered.set(table, seen);
        for (let iova = lo - (lo % tps); iova <= hi; iova += tps) {
          const idx = Number(iova >> BigInt(table.itPageShift));
          seen.add(idx);
          const tce = table.ops.get(table, idx);
          const want = expectedPa(m, area.pages, area.startByte + (iova - area.iova));
          if (!tcePerm(tce)) {
            report('iommufd-tce-matches-area', `IOAS ${ioas.id}: ${d.label} has no TCE at 0x${iova.toString(16)}, inside a mapped area`);
            continue;
          }
          if (want !== undefined && tceAddr(tce) !== want - (want % table.pageSize))
            report(
              'iommufd-tce-matches-area',
              `IOAS ${ioas.id}: TCE at 0x${iova.toString(16)} points at 0x${tceAddr(tce).toString(16)}, the page pinned for it is 0x${want.toString(16)}`,
            );
          if (tcePerm(tce) & TCE_PCI_WRITE && !(area.prot & IOMMU_WRITE))
            report('iommufd-tce-matches-area', `IOAS ${ioas.id}: TCE at 0x${iova.toString(16)} lets the device write, the map was not WRITEABLE`);
        }
      }
    }
    for (const { table } of tables) {
      const seen = covered.get(table) ?? new Set<number>();
      forEachValid(m, table, (idx) => {
        if (!seen.has(idx))
          report(
            'iommufd-tce-matches-area',
            `IOAS ${ioas.id}: ${d.label} has a valid TCE at 0x${(BigInt(idx) << BigInt(table.itPageShift)).toString(16)} outside every area`,
          );
      });
    }
  }
}

/** The physical address behind a byte of an iopt_pages, if its page is pinned. */
function expectedPa(m: Machine, pages: IoptPages, byte: bigint): number | undefined {
  const ps = BigInt(m.mem.pageSize);
  const pa = pages.pfns.get(Number(byte / ps));
  return pa === undefined ? undefined : pa + Number(byte % ps);
}

/** Absolute entry numbers of the valid TCEs of a table. */
function forEachValid(m: Machine, t: IommuTable, fn: (idx: number) => void): void {
  const size = t.itIndirectLevels ? t.itLevelSize : t.itSize;
  const walk = (base: number, level: number, first: number) => {
    for (let i = 0; i < size; i++) {
      const e = m.mem.readU64BE(base + i * 8);
      if (!tcePerm(e)) continue;
      if (level === 0) fn(t.itOffset + first + i);
      else walk(tceAddr(e), level - 1, (first + i) * size);
    }
  };
  walk(t.itBase, t.itIndirectLevels, 0);
}

/** Pages a process has charged to its mm->locked_vm through IOMMUFD (RLIMIT_MODE 1). */
export function iommufdLockedPages(m: Machine, p: Process): number {
  if (!m.iommufd) return 0;
  const counted = new Set<IoptPages>();
  let n = 0;
  for (const ctx of m.iommufd.contexts) {
    for (const ioas of ctx.objectsOf<Ioas>('ioas')) {
      for (const a of ioas.iopt.areas) {
        const pg = a.pages;
        if (!pg || counted.has(pg) || pg.source !== p || pg.accountMode !== 'mm') continue;
        counted.add(pg);
        n += pg.npinned;
      }
    }
  }
  return n;
}
