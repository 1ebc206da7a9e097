/** A machine's state as a report: PEs, their windows and tables, allocator use, event counts. */
import type { PseriesPe } from '../kernel/pseries/pe.js';
import type { Machine } from '../machine/machine.js';

export interface WindowReport {
  num: number;
  kind: 'tce' | 'bypass';
  start: string;
  end: string;
  pageSize?: number;
  levels?: number;
  tableBytes?: number;
  entries?: number;
  entriesInUse?: number;
}

export interface PeReport {
  phb: number;
  pe: string;
  devices: string[];
  group: number | null;
  owner: 'kernel' | 'vfio';
  frozen: boolean;
  windows: WindowReport[];
}

export interface MachineReport {
  machine: string;
  pageSize: number;
  mmu: string;
  ramBytes: number;
  pes: PeReport[];
  events: Record<string, number>;
}

/** pSeries PEs with the windows the hypervisor has enabled (it owns the tables). */
function pseriesPes(m: Machine): PeReport[] {
  return m.groups.map((g) => {
    const pe = g.tableGroup as PseriesPe;
    const windows: WindowReport[] = [];
    pe.phb.tables.forEach((t, num) => {
      if (!t.enabled) return;
      const size = BigInt(t.nbTable) << BigInt(t.pageShift);
      windows.push({
        num,
        kind: 'tce',
        start: `0x${t.busOffset.toString(16)}`,
        end: `0x${(t.busOffset + size - 1n).toString(16)}`,
        pageSize: 2 ** t.pageShift,
        levels: 1,
        tableBytes: t.nbTable * 8,
        entries: t.nbTable,
        entriesInUse: t.used,
      });
    });
    return {
      phb: pe.phb.index,
      pe: pe.node,
      devices: pe.devices.map((d) => d.name),
      group: g.id,
      owner: g.domain === 'blocked' ? 'vfio' : 'kernel',
      frozen: false,
      windows,
    };
  });
}

export function machineReport(m: Machine): MachineReport {
  const pes: PeReport[] = [];
  for (const pphb of m.pnvPhbs) {
    for (const pe of pphb.pes.values()) {
      const windows: WindowReport[] = [];
      pe.tables.forEach((t, num) => {
        if (!t) return;
        let used = 0;
        if (t.itMap) for (const b of t.itMap) used += popcount(b);
        windows.push({
          num,
          kind: 'tce',
          start: `0x${t.start.toString(16)}`,
          end: `0x${(t.start + t.windowSize - 1n).toString(16)}`,
          pageSize: t.pageSize,
          levels: t.itIndirectLevels + 1,
          tableBytes: [...t.levelBlocks.values()].reduce((s, o) => s + 2 ** o * m.mem.pageSize, 0),
          entries: t.itSize,
          entriesInUse: used,
        });
      });
      const tve1 = pphb.hw.getTve(pe.peNumber * 2 + 1);
      if (tve1?.kind === 'bypass') {
        const base = 1n << 59n;
        windows.push({ num: 1, kind: 'bypass', start: `0x${(base + tve1.start).toString(16)}`, end: `0x${(base + tve1.end - 1n).toString(16)}` });
      }
      const g = pe.groupId === null ? null : m.groups[pe.groupId];
      pes.push({
        phb: pphb.globalNumber,
        pe: pe.peNumber.toString(16),
        devices: pe.devices.map((d) => d.name),
        group: pe.groupId,
        owner: g?.domain === 'blocked' ? 'vfio' : 'kernel',
        frozen: pphb.hw.peState[pe.peNumber]!.dmaFrozen,
        windows,
      });
    }
  }
  if (m.papr) pes.push(...pseriesPes(m));
  return {
    machine: m.opts.preset,
    pageSize: m.mem.pageSize,
    mmu: m.mmu,
    ramBytes: m.mem.ramBytes,
    pes,
    events: Object.fromEntries([...m.log.counts.entries()].sort()),
  };
}

function popcount(b: number): number {
  let n = 0;
  for (let x = b; x; x &= x - 1) n++;
  return n;
}
