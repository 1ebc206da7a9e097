/**
 * The invariants tcelab checks while a scenario runs. State invariants are checked after every
 * step; event invariants on every event as it happens. Each has a name and a one-line
 * explanation; a violation names the event that revealed it.
 */
import type { TcelabEvent } from '../base/events.js';
import type { IommuTable } from '../kernel/iommu-table.js';
import { tceAddr, tcePerm } from '../hw/tce.js';
import type { PaprHypervisor } from '../firmware/papr/hypervisor.js';
import type { LparTableOps } from '../kernel/pseries/lpar-tce.js';
import type { PseriesPe } from '../kernel/pseries/pe.js';
import type { Machine } from '../machine/machine.js';
import { checkIommufd, IOMMUFD_INVARIANTS, iommufdLockedPages } from './iommufd-invariants.js';

export const INVARIANTS = {
  'tce-points-at-owned-memory': 'a valid TCE never points at memory that is not pinned by its user or owned by the kernel',
  'no-dma-through-freed-table': 'no TVE points at a TCE table that has been freed',
  'device-table-pointer-current': "a device bound to a kernel driver never holds a pointer to a table that is not its PE's current one",
  'no-stale-tce-cache-dma': 'no DMA is served from a TCE cache entry that a later write has made stale (a missing TCE kill)',
  'single-owner': 'a PE has one owner: the kernel never maps into a PE that VFIO owns, and a VFIO-owned PE has no bypass window',
  'locked-vm-accounted': "a process's locked_vm equals what its preregistered memory and its containers' tables account for",
  'exit-unpins': 'after a process exits, nothing it pinned stays pinned',
  'frozen-pe-moves-no-data': 'a frozen PE moves no data',
  'hypervisor-windows-known': "every DMA window the hypervisor keeps enabled is one the guest knows: its ibm,dma-window, its DDW or one of its PE's tables",
  'hypervisor-accepted-tces':
    'every TCE a pSeries guest counts as mapped (a kernel table entry it allocated, a VFIO userspace-view slot it filled) is held by the hypervisor',
  'no-kernel-oops': 'the kernel never oopses (an oops kills the calling task and leaves the locks it held taken)',
  'no-soft-lockup': 'no call loops in the kernel without end (the watchdog reports a soft lockup; the call never returns)',
  ...IOMMUFD_INVARIANTS,
} as const;

export type InvariantName = keyof typeof INVARIANTS;

export interface Violation {
  invariant: InvariantName;
  detail: string;
  /** The event that revealed it (event invariants), or the last event before the check. */
  eventSeq: number | null;
}

export class Checker {
  readonly violations: Violation[] = [];
  /** The most recent events, for the chain that led to a violation. */
  readonly recent: TcelabEvent[] = [];
  private lastSeq: number | null = null;
  private readonly seen = new Set<string>();

  constructor(private readonly m: Machine) {
    m.log.subscribe((e) => this.onEvent(e));
  }

  private report(invariant: InvariantName, detail: string, eventSeq: number | null): void {
    const key = `${invariant}:${detail}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.violations.push({ invariant, detail, eventSeq });
  }

  private onEvent(e: TcelabEvent): void {
    this.recent.push(e);
    if (this.recent.length > 16) this.recent.shift();
    this.lastSeq = e.seq;
    if (e.layer === 'hw' && e.kind === 'dma') {
      if (e.stale)
        this.report(
          'no-stale-tce-cache-dma',
          `${e.device} ${e.write ? 'write' : 'read'} at 0x${e.bus.toString(16)} used a cached TCE that memory no longer holds`,
          e.seq,
        );
    }
    if (e.layer === 'kernel' && e.kind === 'oops')
      this.report('no-kernel-oops', `pid ${e.pid} oopsed in ${e.fn} (bad access at 0x${e.address.toString(16)})`, e.seq);
    if (e.layer === 'kernel' && e.kind === 'soft-lockup') this.report('no-soft-lockup', `pid ${e.pid} loops in ${e.fn}`, e.seq);
    if (e.layer === 'kernel' && e.kind === 'dma-map') {
      const d = this.m.device(e.device);
      const g = d?.group == null ? undefined : this.m.groups[d.group];
      if (g?.domain === 'blocked') this.report('single-owner', `kernel DMA mapping for ${e.device} while VFIO owns group ${g.id}`, e.seq);
    }
  }

  /** Every live table: the PEs' windows and the VFIO containers' tables. */
  private liveTables(): Map<number, IommuTable> {
    const out = new Map<number, IommuTable>();
    for (const p of this.m.pnvPhbs) for (const pe of p.pes.values()) for (const t of pe.tables) if (t && !t.freed) out.set(t.id, t);
    for (const g of this.m.groups) for (const t of g.tableGroup.tables) if (t && !t.freed) out.set(t.id, t);
    for (const g of this.m.vfioGroups.values()) for (const t of g.container?.iommuData?.tables ?? []) if (t && !t.freed) out.set(t.id, t);
    return out;
  }

  /**
   * hypervisor-accepted-tces: the entries a kernel driver's table has allocated (bit 0 of a
   * window at 0 and the reserved range aside) and the filled userspace-view slots of VFIO tables
   * must each have a TCE in the hypervisor's table (the guest ignores a failed H_PUT_TCE*).
   */
  private checkAccepted(papr: PaprHypervisor, ops: LparTableOps, seq: number | null): void {
    const m = this.m;
    const held = (t: IommuTable, idx: number) => {
      const h = papr.table(t.itIndex);
      return !!h?.enabled && tcePerm(Number(h.get(idx))) !== 0;
    };
    const miss = (t: IommuTable, idx: number, what: string) =>
      this.report(
        'hypervisor-accepted-tces',
        `iommu_table#${t.id} (LIOBN 0x${t.itIndex.toString(16)}) entry 0x${(t.itOffset + idx).toString(16)} is ${what}, but the hypervisor holds no TCE there`,
        seq,
      );
    const kernelTables = new Set<IommuTable>();
    for (const d of m.devices) if (d.driver === 'kernel' && d.table && !d.table.freed && !d.bypass) kernelTables.add(d.table);
    for (const t of kernelTables) {
      const map = t.itMap;
      if (!map) continue;
      for (let byte = 0; byte < map.length; byte++) {
        if (!map[byte]) continue;
        for (let b = 0; b < 8; b++) {
          const idx = byte * 8 + b;
          if (!(map[byte]! & (1 << b)) || idx >= t.itSize) continue;
          if ((t.itOffset === 0 && idx === 0) || (t.itOffset + idx >= t.itReservedStart && t.itOffset + idx < t.itReservedEnd)) continue;
          if (!held(t, idx)) miss(t, idx, 'allocated by the DMA API');
        }
      }
    }
    for (const g of m.vfioGroups.values()) {
      for (const t of g.container?.iommuData?.tables ?? []) {
        if (!t || t.freed) continue;
        for (const idx of ops.filledViewSlots(t)) if (!held(t, idx)) miss(t, idx, 'filled in the VFIO userspace view');
      }
    }
  }

  /** State invariants, checked after each step. */
  checkState(): void {
    const m = this.m;
    const seq = this.lastSeq;
    const tables = this.liveTables();
    const tops = new Set([...tables.values()].map((t) => t.itBase));
    // no-dma-through-freed-table
    for (const phb of m.phbs) {
      for (let i = 0; i < phb.numPes * 2; i++) {
        const tve = phb.getTve(i);
        if (tve?.kind === 'xlate' && !tops.has(tve.tableAddr)) {
          this.report(
            'no-dma-through-freed-table',
            `PHB${phb.index} TVE#${i} (PE#${(i >> 1).toString(16)}) points at 0x${tve.tableAddr.toString(16)}, which is no live table`,
            seq,
          );
        }
      }
    }
    // tce-points-at-owned-memory
    const pinned = new Set<number>();
    for (const p of m.sys.processes.values()) for (const [vpn, n] of p.mm.pins) if (n > 0) pinned.add(p.mm.pages.get(vpn)!);
    const vfioTables = new Set<number>();
    for (const g of m.vfioGroups.values()) for (const t of g.container?.iommuData?.tables ?? []) if (t) vfioTables.add(t.id);
    // A pSeries table lives in the hypervisor: its TCEs are the hypervisor's entries for its LIOBN.
    const papr = m.papr;
    const visit = papr
      ? (t: IommuTable, fn: (idx: number, tce: number) => void) => forEachHvTce(papr, t, fn)
      : (t: IommuTable, fn: (idx: number, tce: number) => void) => forEachTce(m, t, fn);
    for (const t of tables.values()) {
      visit(t, (idx, tce) => {
        const pfn = Math.floor(tceAddr(tce) / m.mem.pageSize);
        const owned = vfioTables.has(t.id) ? pinned.has(pfn) : m.mem.blockOf(pfn) !== null;
        if (!owned)
          this.report(
            'tce-points-at-owned-memory',
            `iommu_table#${t.id} entry 0x${(t.itOffset + idx).toString(16)} points at 0x${tceAddr(tce).toString(16)}, which is ${vfioTables.has(t.id) ? 'not pinned' : 'free'}`,
            seq,
          );
      });
    }
    // device-table-pointer-current
    for (const d of m.devices) {
      if (d.driver !== 'kernel' || d.isBridge) continue;
      const pe = m.peOf(d) ?? m.tableGroupOf(d);
      if (d.table && (d.table.freed || d.table !== pe?.tables[0])) {
        this.report(
          'device-table-pointer-current',
          `${d.name} points at iommu_table#${d.table.id}${d.table.freed ? ' (freed)' : ''}, its PE's window #0 is ${pe?.tables[0] ? `#${pe.tables[0].id}` : 'none'}`,
          seq,
        );
      }
    }
    // single-owner: a VFIO-owned PE has no bypass
    for (const g of m.groups) {
      if (!g.devices.length) continue;
      const pe = m.peOf(g.devices[0]!);
      if (g.domain === 'blocked' && pe?.tceBypassEnabled)
        this.report('single-owner', `group ${g.id} is owned by VFIO but PE#${pe.peNumber.toString(16)} still has its bypass window`, seq);
    }
    // hypervisor-windows-known
    if (m.papr) {
      for (const g of m.groups) {
        const pe = g.tableGroup as PseriesPe;
        const known = new Set([pe.dmaWindow?.liobn, pe.ddw?.liobn, ...pe.tables.map((t) => t?.itIndex)]);
        for (const t of pe.phb.tables) {
          if (t.enabled && !known.has(t.liobn))
            this.report('hypervisor-windows-known', `the hypervisor keeps LIOBN 0x${t.liobn.toString(16)} of ${pe.node} enabled; the guest forgot it`, seq);
        }
      }
    }
    if (m.papr && m.pseries) this.checkAccepted(m.papr, m.pseries.tableOps, seq);
    checkIommufd(m, (inv, detail) => this.report(inv, detail, seq));
    // locked-vm-accounted and exit-unpins
    for (const p of m.sys.processes.values()) {
      if (p.exited) {
        const left = [...p.mm.pins.values()].reduce((a, b) => a + b, 0);
        if (left) this.report('exit-unpins', `pid ${p.pid} exited with ${left} page pins left`, seq);
        continue;
      }
      let accounted = p.mm.iommuGroupMemList.reduce((s, r) => s + r.entries, 0) + iommufdLockedPages(m, p);
      for (const g of m.vfioGroups.values()) {
        const c = g.container?.iommuData;
        if (!c || c.mm !== p.mm || g.container!.groups[0] !== g) continue;
        for (const t of c.tables) if (t) accounted += Math.floor(t.itAllocatedSize / m.mem.pageSize);
        if (!c.v2 && c.enabled) accounted += c.lockedPages;
      }
      if (p.mm.lockedVm !== accounted) {
        this.report('locked-vm-accounted', `pid ${p.pid}: locked_vm is ${p.mm.lockedVm} pages, ${accounted} are accounted for`, seq);
      }
    }
  }
}

/** Visit every valid TCE the hypervisor holds in a pSeries table's window. */
function forEachHvTce(papr: PaprHypervisor, t: IommuTable, fn: (idx: number, tce: number) => void): void {
  const h = papr.table(t.itIndex);
  if (!h?.enabled || h.busOffset >> BigInt(h.pageShift) !== BigInt(t.itOffset)) return;
  for (const [i, tce] of h.stored()) if (i < t.itSize && tcePerm(Number(tce))) fn(i, Number(tce));
}

/** Visit every valid TCE of a table, walking only the levels that exist. */
function forEachTce(m: Machine, t: IommuTable, fn: (idx: number, tce: number) => void): void {
  const size = t.itIndirectLevels ? t.itLevelSize : t.itSize;
  const walk = (base: number, level: number, first: number) => {
    for (let i = 0; i < size; i++) {
      const e = m.mem.readU64BE(base + i * 8);
      if (!tcePerm(e)) continue;
      if (level === 0) fn(first + i, e);
      else walk(tceAddr(e), level - 1, (first + i) * size);
    }
  };
  walk(t.itBase, t.itIndirectLevels, 0);
}
