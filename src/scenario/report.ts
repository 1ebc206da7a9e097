/** A machine's state as a report: PEs, their windows and tables, allocator use, event counts. */
import type { IommufdCtx } from '../iommufd/context.js';
import type { IommuGroup } from '../kernel/iommu-group.js';
import type { PseriesPe } from '../kernel/pseries/pe.js';
import type { Machine } from '../machine/machine.js';
import { PRESETS } from '../machine/presets.js';
import type { VfioContainer } from '../vfio/container.js';
import { type HwptRef, hwptIndex, type IommufdReport, iommufdReport } from './iommufd-report.js';

export type { HwptRef, IommufdReport } from './iommufd-report.js';

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
  /** The iommu_table behind a PowerNV TCE window (its id), for the table view. */
  table?: number;
  /** The IOMMUFD HWPT whose paging domain owns that table, when one does. */
  hwpt?: HwptRef;
}

export type PeOwner = 'kernel' | 'vfio' | 'iommufd' | 'blocked';

/** Who owns a group's DMA: the kernel, a VFIO container, or an IOMMUFD user (attached or blocked). */
function ownerOf(m: Machine, g: IommuGroup): PeOwner {
  if (g.domain === 'platform') return 'kernel';
  if (g.domain === 'paging') return 'iommufd';
  return m.iommufd?.contexts.has(g.owner as IommufdCtx) ? 'blocked' : 'vfio';
}

export interface PeReport {
  phb: number;
  pe: string;
  devices: string[];
  group: number | null;
  /** kernel DMA, a VFIO container, an IOMMUFD paging domain, or blocked by an IOMMUFD user. */
  owner: PeOwner;
  /** The VFIO container holding the PE's group (numbered as in `topology.containers`). */
  container: number | null;
  frozen: boolean;
  windows: WindowReport[];
  /** The HWPT (and its domain's label) the PE's group is attached to, when it is a paging domain. */
  hwpt?: HwptRef & { domain: string };
}

export interface FunctionReport {
  name: string;
  model: string;
  phb: number;
  /** The PE the RTT maps the function to (hex), none once unplugged. */
  pe: string | null;
  group: number | null;
  driver: 'kernel' | 'vfio-pci' | null;
  bridge: boolean;
  removed: boolean;
  /** The kernel's table pointer (set_iommu_table_base) and whether that table was freed. */
  table: number | null;
  tableFreed: boolean;
}

export interface GroupReport {
  id: number;
  devices: string[];
  /** platform = the kernel's DMA domain, blocked = claimed by a user, paging = an IOMMUFD domain. */
  domain: 'platform' | 'blocked' | 'paging';
  container: number | null;
}

export interface ContainerReport {
  id: number;
  groups: number[];
  /** The IOMMU driver set by VFIO_SET_IOMMU, if any. */
  iommu: 'spapr-tce-v1' | 'spapr-tce-v2' | null;
  owner: { pid: number; comm: string } | null;
  tables: number[];
  lockedPages: number;
}

export interface TopologyReport {
  platform: 'powernv' | 'pseries';
  cpu: string;
  /** The modelled machines have one chip (socket); every PHB hangs off it. */
  chips: { chip: number; phbs: { index: number; model: string; functions: string[] }[] }[];
  functions: FunctionReport[];
  groups: GroupReport[];
  containers: ContainerReport[];
}

export interface MachineReport {
  machine: string;
  pageSize: number;
  mmu: string;
  ramBytes: number;
  topology: TopologyReport;
  pes: PeReport[];
  /** IOMMUFD contexts and their objects; absent when the kernel has no IOMMUFD. */
  iommufd?: IommufdReport;
  events: Record<string, number>;
}

/** Containers numbered in the order their first group appears. */
function containerIds(m: Machine): Map<VfioContainer, number> {
  const ids = new Map<VfioContainer, number>();
  for (const g of [...m.vfioGroups.values()].sort((a, b) => a.iommuGroup.id - b.iommuGroup.id))
    if (g.container && !ids.has(g.container)) ids.set(g.container, ids.size + 1);
  return ids;
}

function topologyReport(m: Machine, ids: Map<VfioContainer, number>): TopologyReport {
  const preset = PRESETS[m.opts.preset];
  const functions: FunctionReport[] = m.devices.map((d) => {
    const pe = d.hw.phb.rtt.get(d.hw.rid);
    return {
      name: d.name,
      model: d.hw.spec.model,
      phb: d.hw.phb.index,
      pe: pe === undefined ? null : pe.toString(16),
      group: d.group,
      driver: d.driver,
      bridge: d.isBridge,
      removed: d.removed,
      table: d.table?.id ?? null,
      tableFreed: d.table?.freed ?? false,
    };
  });
  const groupOf = (id: number) => m.vfioGroups.get(id)?.container;
  return {
    platform: preset.platform,
    cpu: preset.cpu,
    chips: [
      {
        chip: 0,
        phbs: m.phbs.map((p) => ({
          index: p.index,
          model: preset.platform === 'pseries' ? 'spapr-pci-host-bridge' : p.gen.model,
          functions: functions.filter((f) => f.phb === p.index).map((f) => f.name),
        })),
      },
    ],
    functions,
    groups: m.groups.map((g) => {
      const c = groupOf(g.id);
      return { id: g.id, devices: g.devices.map((d) => d.name), domain: g.domain, container: c ? ids.get(c)! : null };
    }),
    containers: [...ids].map(([c, id]) => {
      const d = c.iommuData;
      return {
        id,
        groups: c.groups.map((g) => g.iommuGroup.id),
        iommu: d ? (d.v2 ? 'spapr-tce-v2' : 'spapr-tce-v1') : null,
        owner: d?.owner ? { pid: d.owner.pid, comm: d.owner.comm } : null,
        tables: (d?.tables ?? []).flatMap((t) => (t ? [t.id] : [])),
        lockedPages: d?.lockedPages ?? 0,
      };
    }),
  };
}

/** pSeries PEs with the windows the hypervisor has enabled (it owns the tables). */
function pseriesPes(m: Machine, ids: Map<VfioContainer, number>): PeReport[] {
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
      owner: ownerOf(m, g),
      container: containerOf(m, g.id, ids),
      frozen: false,
      windows,
    };
  });
}

function containerOf(m: Machine, group: number | null, ids: Map<VfioContainer, number>): number | null {
  const c = group === null ? null : m.vfioGroups.get(group)?.container;
  return c ? ids.get(c)! : null;
}

export function machineReport(m: Machine): MachineReport {
  const ids = containerIds(m);
  const hwpts = hwptIndex(m);
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
          table: t.id,
          ...(hwpts.tables.has(t.id) ? { hwpt: hwpts.tables.get(t.id)! } : {}),
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
        owner: g ? ownerOf(m, g) : 'kernel',
        container: containerOf(m, pe.groupId, ids),
        frozen: pphb.hw.peState[pe.peNumber]!.dmaFrozen,
        windows,
        ...(pe.groupId !== null && hwpts.groups.has(pe.groupId) ? { hwpt: hwpts.groups.get(pe.groupId)! } : {}),
      });
    }
  }
  if (m.papr) pes.push(...pseriesPes(m, ids));
  const iommufd = iommufdReport(m);
  return {
    machine: m.opts.preset,
    pageSize: m.mem.pageSize,
    mmu: m.mmu,
    ramBytes: m.mem.ramBytes,
    topology: topologyReport(m, ids),
    pes,
    ...(iommufd ? { iommufd } : {}),
    events: Object.fromEntries([...m.log.counts.entries()].sort()),
  };
}

function popcount(b: number): number {
  let n = 0;
  for (let x = b; x; x &= x - 1) n++;
  return n;
}
