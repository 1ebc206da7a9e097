/**
 * The IOMMUFD part of the machine report: every live context with its IOAS, HWPTs (each with its
 * domain's windows and TCE tables) and bound devices, and which HWPT each IOMMU group is attached to.
 */
import type { HwptPaging, Ioas, IommufdCtx, IommufdDevice } from '../iommufd/context.js';
import type { IommuDomain } from '../kernel/iommu-group.js';
import type { IommuTable } from '../kernel/iommu-table.js';
import { isPpc64TceDomain } from '../kernel/ppc64-iommu.js';
import { isPpc64Domain } from '../kernel/spapr-tce-iommu.js';
import type { Machine } from '../machine/machine.js';

const hex = (n: bigint | number) => `0x${n.toString(16)}`;

export interface IovaRange {
  start: string;
  last: string;
}

export interface IoasAreaReport {
  iova: string;
  last: string;
  /** IOMMU_READ 1 | IOMMU_WRITE 2 | IOMMU_CACHE 4, as the map asked. */
  prot: number;
  /** The area's pages are pinned for the attached domains. */
  pinned: boolean;
}

export interface IoasReport {
  id: number;
  areas: IoasAreaReport[];
  /** The IOVA alignment the attached domains impose (IOVA_RANGES' out_iova_alignment). */
  iovaAlignment: string;
  /** What IOMMU_IOAS_IOVA_RANGES answers: the holes between reserved ranges. */
  usable: IovaRange[];
}

export interface DomainWindowReport {
  num: number;
  start: string;
  last: string;
  pageSize: number;
  /** The iommu_table holding the window's TCEs (for the table view). */
  table: number;
}

export interface DomainReport {
  /** The table group (PE) the domain was allocated for, and its driver: `… ppc64` or `… rfc`. */
  label: string;
  aperture: IovaRange;
  windows: DomainWindowReport[];
}

export interface HwptReport {
  id: number;
  ioas: number;
  /** Made by an IOAS attach (shared by the devices of that IOAS), not by HWPT_ALLOC. */
  auto: boolean;
  domain: DomainReport | null;
}

export interface IommufdDeviceReport {
  id: number;
  /** The PCI function (its name, as in `topology.functions`). */
  name: string;
  group: number;
  hwpt: number | null;
}

export interface IommufdContextReport {
  /** Live contexts numbered from 1 in the order they were opened. */
  id: number;
  ioas: IoasReport[];
  hwpts: HwptReport[];
  devices: IommufdDeviceReport[];
  /** The IOAS the type1 compatibility ioctls use (IOMMU_VFIO_IOAS), if one is set. */
  vfioIoas: number | null;
}

export interface IommufdReport {
  driver: 'ppc64' | 'rfc-2026';
  contexts: IommufdContextReport[];
}

/** An HWPT named across contexts. */
export interface HwptRef {
  context: number;
  id: number;
}

/** The windows of a PPC64 paging domain (tcelab's driver or the RFC's), each with its table. */
export function domainWindows(d: IommuDomain): { num: number; start: bigint; last: bigint; table: IommuTable }[] {
  if (isPpc64TceDomain(d)) return d.windows.map((w) => ({ num: w.num, start: w.start, last: w.last, table: w.table }));
  if (isPpc64Domain(d)) return [{ num: 0, start: d.table.start, last: d.table.start + d.table.windowSize - 1n, table: d.table }];
  return [];
}

function domainReport(d: IommuDomain): DomainReport {
  return {
    label: d.label,
    aperture: { start: hex(d.geometry.apertureStart), last: hex(d.geometry.apertureEnd) },
    windows: domainWindows(d).map((w) => ({ num: w.num, start: hex(w.start), last: hex(w.last), pageSize: w.table.pageSize, table: w.table.id })),
  };
}

function ioasReport(ioas: Ioas): IoasReport {
  const iopt = ioas.iopt;
  return {
    id: ioas.id,
    areas: iopt.areasIn(0n, (1n << 64n) - 1n).map((a) => ({ iova: hex(a.iova), last: hex(a.last), prot: a.prot, pinned: a.filled })),
    iovaAlignment: hex(iopt.iovaAlignment),
    usable: iopt.usableRanges().map((r) => ({ start: hex(r.start), last: hex(r.last) })),
  };
}

function deviceReport(idev: IommufdDevice): IommufdDeviceReport {
  const g = idev.igroup;
  return { id: idev.id, name: idev.dev.name, group: g.group.id, hwpt: g.hwpt && g.devices.includes(idev) ? g.hwpt.id : null };
}

function contextReport(ctx: IommufdCtx, id: number): IommufdContextReport {
  const byId = <T>(a: T & { id: number }, b: T & { id: number }) => a.id - b.id;
  return {
    id,
    ioas: ctx.objectsOf<Ioas>('ioas').sort(byId).map(ioasReport),
    hwpts: ctx
      .objectsOf<HwptPaging>('hwpt_paging')
      .sort(byId)
      .map((h) => ({ id: h.id, ioas: h.ioas.id, auto: h.autoDomain, domain: h.domain ? domainReport(h.domain) : null })),
    devices: ctx.objectsOf<IommufdDevice>('device').sort(byId).map(deviceReport),
    vfioIoas: ctx.vfioIoas?.id ?? null,
  };
}

/** The IOMMUFD section, or undefined when the machine's kernel has no IOMMUFD. */
export function iommufdReport(m: Machine): IommufdReport | undefined {
  if (!m.iommufd || !m.opts.iommufd) return undefined;
  return { driver: m.opts.iommufd, contexts: [...m.iommufd.contexts].map((c, i) => contextReport(c, i + 1)) };
}

/** Which HWPT each IOMMU group is attached to, and which HWPT's domain holds each TCE table. */
export function hwptIndex(m: Machine): { groups: Map<number, HwptRef & { domain: string }>; tables: Map<number, HwptRef> } {
  const groups = new Map<number, HwptRef & { domain: string }>();
  const tables = new Map<number, HwptRef>();
  [...(m.iommufd?.contexts ?? [])].forEach((ctx, i) => {
    const context = i + 1;
    for (const g of ctx.groups.values())
      if (g.hwpt?.domain && g.group.current === g.hwpt.domain) groups.set(g.group.id, { context, id: g.hwpt.id, domain: g.hwpt.domain.label });
    for (const h of ctx.objectsOf<HwptPaging>('hwpt_paging'))
      if (h.domain) for (const w of domainWindows(h.domain)) tables.set(w.table.id, { context, id: h.id });
  });
  return { groups, tables };
}
